package export_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/media"
)

// encoded is what the log would get of each event: its headers and body.
func encoded(t testing.TB, evs []events.Event) []string {
	t.Helper()
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		h, body, err := events.Encode(ev)
		if err != nil {
			t.Fatalf("encode %s: %v", ev.ID, err)
		}
		out = append(out, fmt.Sprint(ev.ID, " ", h, " ", string(body))) // fmt sorts map keys
	}
	return out
}

// sameFacts fails unless two runs of Facts gave the same events, in the same order.
func sameFacts(t testing.TB, got, want []events.Event) {
	t.Helper()
	g, w := encoded(t, got), encoded(t, want)
	if len(g) != len(w) {
		t.Fatalf("%d facts, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("fact %d:\n got %s\nwant %s", i, g[i], w[i])
		}
	}
}

// emptyDir fails unless dir holds nothing: the spool is gone.
func emptyDir(t testing.TB, dir, when string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%s: %d file(s) left in the spool folder, first %s", when, len(left), left[0].Name())
	}
}

// Facts read from the spool are the facts read from the file again, for every fixture
// (every text form, media case, layout and quirk) and a generated export.
func TestSpoolGivesTheSameFacts(t *testing.T) {
	for _, rel := range []string{"channel", "account", "old", "quirks"} {
		t.Run(rel, func(t *testing.T) {
			plain := open(t, rel)
			dir := t.TempDir()
			spooled, err := export.Open(fixture(t, rel), export.Spool(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := spooled.Close(); err != nil {
					t.Error(err)
				}
				emptyDir(t, dir, "after Close")
			}()
			equal(t, "stats", spooled.Stats(), plain.Stats())
			equal(t, "chats", spooled.Chats(), plain.Chats())
			want := collect(t, plain, media.NewMemory(0))
			if len(want) == 0 {
				t.Fatal("the fixture has no facts")
			}
			sameFacts(t, collect(t, spooled, media.NewMemory(0)), want)
			// A second run reads the spool from its start again.
			sameFacts(t, collect(t, spooled, nil), collect(t, plain, nil))
		})
	}
	t.Run("generated", func(t *testing.T) {
		fsys := fstest.MapFS{"result.json": {Data: genExport(3000), ModTime: time.Unix(1, 0)}}
		plain, err := export.OpenFS(fsys, "result.json")
		if err != nil {
			t.Fatal(err)
		}
		spooled, err := export.OpenFS(fsys, "result.json", export.Spool(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		defer spooled.Close()
		sameFacts(t, collect(t, spooled, nil), collect(t, plain, nil))
	})
}

// Facts of a spooled export come from the spool, not from parsing the file again: after
// the file's text changes (same size and time, so Facts cannot tell), the spooled export
// still yields what Open validated, and a plain one yields the changed text.
func TestSpoolIsWhatFactsRead(t *testing.T) {
	data := genExport(200)
	fsys := fstest.MapFS{"result.json": {Data: bytes.Clone(data), ModTime: time.Unix(1, 0)}}
	plain, err := export.OpenFS(fsys, "result.json")
	if err != nil {
		t.Fatal(err)
	}
	spooled, err := export.OpenFS(fsys, "result.json", export.Spool(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer spooled.Close()
	want := collect(t, plain, nil)
	changed := bytes.ReplaceAll(data, []byte("Пост номер"), []byte("ПОСТ НОМЕР"))
	if len(changed) != len(data) || bytes.Equal(changed, data) {
		t.Fatal("the edit must change the text and keep the size")
	}
	fsys["result.json"].Data = changed
	sameFacts(t, collect(t, spooled, nil), want)
	got := collect(t, plain, nil)
	if p := posts(got)[1]; p == nil || !bytes.Contains([]byte(p.Text), []byte("ПОСТ НОМЕР")) {
		t.Fatalf("the plain export did not read the file again: %+v", p)
	}
}

// The spool never outlives the Export: not after Close, not after an Open that failed
// (the error is the same, with its position), and on this system not even while it is
// open (it is unlinked at once, so a killed import leaves nothing behind).
func TestSpoolIsRemoved(t *testing.T) {
	dir := t.TempDir()
	e, err := export.Open(fixture(t, "channel"), export.Spool(dir))
	if err != nil {
		t.Fatal(err)
	}
	emptyDir(t, dir, "while open")
	collect(t, e, nil)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	emptyDir(t, dir, "after Close")

	for _, name := range []string{"bad_json.json", "bad_date.json", "truncated.json", "bad_channel_id.json", "trailing.json"} {
		t.Run(name, func(t *testing.T) {
			path := fixture(t, "malformed/"+name)
			_, want := export.Open(path)
			x, err := export.Open(path, export.Spool(dir))
			if err == nil {
				_ = x.Close()
				t.Fatal("opened a malformed file")
			}
			var pe, wpe *export.ParseError
			if !errors.As(err, &pe) || !errors.As(want, &wpe) || err.Error() != want.Error() || *pe != *wpe {
				t.Fatalf("spooled open: %v, want %v", err, want)
			}
			emptyDir(t, dir, "after a failed Open")
		})
	}
}

// A spool folder that cannot be written fails Open with ErrSpool.
func TestSpoolFolderMissing(t *testing.T) {
	_, err := export.Open(fixture(t, "channel"), export.Spool(filepath.Join(t.TempDir(), "absent")))
	if !errors.Is(err, export.ErrSpool) {
		t.Fatalf("err = %v, want ErrSpool", err)
	}
}

// Cancelling the context stops a spooled Facts with the context's error.
func TestSpoolFactsCancelled(t *testing.T) {
	e, err := export.Open(fixture(t, "channel"), export.Spool(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var last error
	for _, err := range e.Facts(ctx, nil) {
		last = err
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("last = %v, want context.Canceled", last)
	}
}
