package export_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/testdata/sample"
)

func TestFactsStopsWhenTheConsumerStops(t *testing.T) {
	e := open(t, "channel")
	n := 0
	for _, err := range e.Facts(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("got %d events", n)
	}
	// The Export can be read again afterwards.
	if got := len(collect(t, e, nil)); got != 16 {
		t.Fatalf("second read: %d events", got)
	}
}

func TestFactsContextCanceled(t *testing.T) {
	e := open(t, "channel")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []error
	n := 0
	for _, err := range e.Facts(ctx, nil) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n++; n == 2 {
			cancel()
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("errors = %v, want one context.Canceled", errs)
	}
}

func TestFactsWithoutStore(t *testing.T) {
	ps := posts(collect(t, open(t, "channel"), nil))
	equal(t, "present file", ps[7].Media[0].Skipped, export.SkipNoStore)
	equal(t, "no sha", ps[7].Media[0].SHA256, "")
	equal(t, "missing file", ps[10].Media[0].Skipped, export.SkipMissing)
	equal(t, "placeholder", ps[9].Media[0].Skipped, export.SkipNotIncluded)
}

type sinkFunc func(ctx context.Context, r io.Reader, meta media.Meta) (string, bool, error)

func (f sinkFunc) Put(ctx context.Context, r io.Reader, meta media.Meta) (string, bool, error) {
	return f(ctx, r, meta)
}

func TestFactsStoreErrors(t *testing.T) {
	t.Run("too large is a skip", func(t *testing.T) {
		small := media.NewMemory(100) // photos are ~700 bytes, the voice message 43
		ps := posts(collect(t, open(t, "channel"), small))
		equal(t, "photo", ps[7].Media[0].Skipped, export.SkipTooLarge)
		if ps[14].Media[0].SHA256 == "" {
			t.Error("small file not stored")
		}
	})
	t.Run("other errors stop Facts", func(t *testing.T) {
		down := errors.New("object store unavailable")
		sink := sinkFunc(func(context.Context, io.Reader, media.Meta) (string, bool, error) { return "", false, down })
		var got []error
		n := 0
		for _, err := range open(t, "channel").Facts(context.Background(), sink) {
			if err != nil {
				got = append(got, err)
			} else {
				n++
			}
		}
		// Posts 2-6 have no media; the album's first photo is where it stops.
		if n != 5 || len(got) != 1 || !errors.Is(got[0], down) {
			t.Fatalf("%d events, errors %v", n, got)
		}
	})
}

func TestFactsDetectsAChangedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "result.json")
	if err := os.WriteFile(p, readFile(t, fixture(t, "old/result.json")), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := export.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := os.WriteFile(p, []byte(`{"name":"x","type":"public_channel","id":1,"messages":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, err := range e.Facts(context.Background(), nil) {
		if !errors.Is(err, export.ErrChanged) {
			t.Fatalf("err = %v, want ErrChanged", err)
		}
	}
}

// Media are read through os.Root: a link out of the export folder is not followed.
func TestMediaStayInsideTheExport(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.jpg")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "photos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "photos", "link.jpg")); err != nil {
		t.Skip("no symlinks:", err)
	}
	doc := `{"name":"x","type":"public_channel","id":42,"messages":[{"id":1,"type":"message","date_unixtime":"1700000000","photo":"photos/link.jpg","text":""}]}`
	if err := os.WriteFile(filepath.Join(dir, "result.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := export.Open(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := media.NewMemory(0)
	ps := posts(collect(t, e, store))
	equal(t, "skipped", ps[1].Media[0].Skipped, export.SkipUnreadable)
	equal(t, "stored", store.Len(), 0)
	equal(t, "stats", e.Stats().MediaSkipped, map[string]int{export.SkipUnreadable: 1})
}

// The sample data embedded for `tgflow dev` reads through OpenFS.
func TestSample(t *testing.T) {
	e, err := export.OpenFS(sample.FS, sample.Root)
	if err != nil {
		t.Fatal(err)
	}
	store := media.NewMemory(0)
	evs := collect(t, e, store)
	st := e.Stats()
	if st.Channels < 3 || st.Albums < 2 || st.Messages < 40 || st.Messages > 80 {
		t.Fatalf("stats %+v", st)
	}
	if st.MediaFiles == 0 || st.MediaSkipped[export.SkipMissing] != 0 {
		t.Fatalf("media stats %+v", st)
	}
	var forwards, replies, edited, ru, en int
	domains := map[string]bool{}
	shaChannels := map[string]map[events.ChannelID]bool{}
	for _, ev := range evs {
		p, ok := ev.Data.(*events.PostParsed)
		if !ok {
			continue
		}
		if p.Forward != nil {
			forwards++
		}
		if p.ReplyTo != nil {
			replies++
		}
		if p.EditDate > 0 {
			edited++
		}
		if strings.ContainsAny(p.Text, "абвгдеёжзийклмнопрстуфхцчшщыэюя") {
			ru++
		} else if p.Text != "" {
			en++
		}
		for _, l := range p.Links {
			host := strings.SplitN(strings.SplitN(l, "://", 2)[1], "/", 2)[0]
			domains[host] = true
		}
		for _, m := range p.Media {
			if m.SHA256 != "" {
				if shaChannels[m.SHA256] == nil {
					shaChannels[m.SHA256] = map[events.ChannelID]bool{}
				}
				shaChannels[m.SHA256][p.ChannelID] = true
			}
		}
	}
	if forwards < 3 || replies < 3 || edited < 1 || ru == 0 || en == 0 || len(domains) < 3 {
		t.Errorf("forwards %d replies %d edited %d ru %d en %d domains %v", forwards, replies, edited, ru, en, domains)
	}
	shared := 0
	for _, chans := range shaChannels {
		if len(chans) > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no image is posted in two channels")
	}
	if store.Len() != len(shaChannels) || store.Len() >= st.MediaFiles {
		t.Errorf("stored %d objects for %d files", store.Len(), st.MediaFiles)
	}
	for name := range domains {
		if !strings.HasSuffix(name, "example.com") && !strings.HasSuffix(name, "example.org") && !strings.HasSuffix(name, "example.net") {
			t.Errorf("link to a real domain: %s", name)
		}
	}
}

// A problem deep in a large file is placed exactly: the decoder's buffers and the reader's
// bookkeeping move many times before it.
func TestMalformedDeepInALargeFile(t *testing.T) {
	good := genExport(8000)
	target := []byte(`"id": 6001,`)
	at := bytes.Index(good, target)
	if at < 0 {
		t.Fatal("no message 6001")
	}
	tests := []struct {
		name    string
		find    string // replaced, after message 6001 starts
		replace string
		marker  string // where the error must point, found in the corrupted file after `at`
		want    string
	}{
		{"bad date", `"date_unixtime": "`, `"date_unixtime": "x`, `"x`, `date_unixtime "x`},
		{"missing comma", `"type": "message",`, `"type": "message"`, `"date"`, "invalid character '\"' after object key:value pair"},
		{"stray byte", `"from": `, `"from": @`, `@`, "invalid character '@' looking for beginning of value"},
		{"control character in a string", `"from": "`, "\"from\": \"\x01", "\x01", "invalid character '\\x01' in string literal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := at + bytes.Index(good[at:], []byte(tc.find))
			data := append(append(append([]byte{}, good[:i]...), tc.replace...), good[i+len(tc.find):]...)
			want := int64(at + bytes.Index(data[at:], []byte(tc.marker)))
			_, err := export.OpenFS(fstest.MapFS{"result.json": {Data: data}}, "result.json")
			var pe *export.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v", err)
			}
			if pe.Offset != want || pe.Message != 6000 || !strings.Contains(pe.Reason, tc.want) {
				t.Fatalf("got %v (message %d), want byte %d, message 6000, %q", err, pe.Message, want, tc.want)
			}
		})
	}
}

func TestGeneratedExport(t *testing.T) {
	e, err := export.OpenFS(fstest.MapFS{"result.json": {Data: genExport(1000), ModTime: time.Unix(1, 0)}}, "result.json")
	if err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	evs := collect(t, e, nil)
	if len(evs) != st.Posts+st.Albums || st.Albums != 20 || st.Skipped[export.SkipService] != 10 {
		t.Fatalf("%d events, stats %+v", len(evs), st)
	}
}

// A whole-account export made without chats is valid and has nothing to import.
func TestAccountWithoutChats(t *testing.T) {
	doc := `{"about": "Here is the data you requested.", "personal_information": {"user_id": 1}, "contacts": {"list": []}}`
	e, err := export.OpenFS(fstest.MapFS{"result.json": {Data: []byte(doc)}}, "result.json")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "layout", e.Layout(), export.LayoutAccount)
	equal(t, "stats", e.Stats(), export.Stats{})
	equal(t, "events", len(collect(t, e, nil)), 0)
}
