package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/tgflow/tgflow/services/ingest/export/exporttest"
)

// callRecorder is a visitor that records every call, with copies of what it was given.
type callRecorder struct{ calls []any }

type recordedMessage struct {
	Chat, Index int
	Start       int64
	Raw         string
	Fast        *fastMessage
}

func (r *callRecorder) chatStart(c *chatState) error {
	r.calls = append(r.calls, fmt.Sprintf("start ord=%d path=%q list=%q index=%d start=%d", c.ord, c.path, c.list, c.index, c.start))
	return nil
}

func (r *callRecorder) message(c *chatState, i int, start int64, raw json.RawMessage, f *fastMessage) error {
	m := recordedMessage{Chat: c.ord, Index: i, Start: start, Raw: string(raw)}
	if f != nil {
		m.Fast = copyFast(f)
	}
	r.calls = append(r.calls, m)
	return nil
}

func (r *callRecorder) chatEnd(c *chatState) error {
	r.calls = append(r.calls, fmt.Sprintf("end ord=%d name=%s@%d type=%s@%d id=%s@%d messages=%v",
		c.ord, c.name.raw, c.name.off, c.typ.raw, c.typ.off, c.id.raw, c.id.off, c.sawMessages))
	return nil
}

// copyFast deep-copies a typed decode (the walkers reuse theirs); an empty slice and a
// nil one are the same to parseFast and are made the same here.
func copyFast(f *fastMessage) *fastMessage {
	c := *f
	c.TextEntities = append([]fastPart(nil), f.TextEntities...)
	c.Reactions = append([]fastReaction(nil), f.Reactions...)
	for _, raw := range []*json.RawMessage{&c.ForwardedFrom, &c.ReplyToPeer, &c.Text} {
		*raw = append(json.RawMessage(nil), *raw...)
	}
	for _, p := range []**string{&c.DateUnix, &c.EditedUnix, &c.ForwardedFromID, &c.Photo, &c.File} {
		if *p != nil {
			s := **p
			*p = &s
		}
	}
	return &c
}

// compareWalkers walks data with both walkers. fastWalk may fall back on anything, but
// what it accepts walk must accept too, with the same calls; and it must not accept what
// walk rejects. It reports whether fastWalk accepted the file.
func compareWalkers(t *testing.T, data []byte) bool {
	t.Helper()
	var exact, fast callRecorder
	werr := walk(bytes.NewReader(data), &exact)
	// Read a byte at a time, the fast walker's buffer moves at every byte; read at once,
	// never. Both must give the same.
	ferr := fastWalk(iotest.OneByteReader(bytes.NewReader(data)), &fast)
	var big callRecorder
	bigErr := fastWalk(bytes.NewReader(data), &big)
	if (ferr == nil) != (bigErr == nil) || ferr == nil && !reflect.DeepEqual(fast.calls, big.calls) {
		t.Fatalf("fastWalk read byte by byte (%v) differs from read at once (%v)", ferr, bigErr)
	}
	if ferr != nil {
		if !errors.Is(ferr, errFallback) {
			t.Fatalf("fastWalk: %v, want errFallback", ferr)
		}
		return false
	}
	if werr != nil {
		t.Fatalf("fastWalk accepted a file walk rejects: %v", werr)
	}
	if len(fast.calls) != len(exact.calls) {
		t.Fatalf("fastWalk made %d calls, walk %d", len(fast.calls), len(exact.calls))
	}
	for i := range fast.calls {
		if !reflect.DeepEqual(fast.calls[i], exact.calls[i]) {
			t.Fatalf("call %d:\nfast  %+v\nexact %+v", i, show(fast.calls[i]), show(exact.calls[i]))
		}
	}
	return true
}

func show(c any) string {
	if m, ok := c.(recordedMessage); ok {
		b, _ := json.Marshal(m)
		return string(b)
	}
	return fmt.Sprint(c)
}

// fastWalk reads every well-formed fixture, the bundled sample and a generated export
// exactly as walk does (same visitor calls, same offsets, same typed decodes), and gives
// up on every malformed fixture.
func TestFastWalkMatchesWalk(t *testing.T) {
	root := filepath.Join("..", "..", "..", "testdata")
	for _, rel := range []string{"exports/channel/result.json", "exports/account/result.json", "exports/old/result.json",
		"exports/quirks/result.json", "sample/DataExport/result.json"} {
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				t.Fatal(err)
			}
			if !compareWalkers(t, data) {
				t.Fatal("fastWalk gave up on a well-formed export")
			}
		})
	}
	t.Run("generated", func(t *testing.T) {
		if !compareWalkers(t, exporttest.Generate(500)) {
			t.Fatal("fastWalk gave up on a generated export")
		}
	})
	bad, err := filepath.Glob(filepath.Join(root, "exports", "malformed", "*.json"))
	if err != nil || len(bad) == 0 {
		t.Fatalf("malformed fixtures: %v (%d)", err, len(bad))
	}
	for _, p := range bad {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// Semantic problems (a bad date) are the validator's; syntax ones must make
			// fastWalk give up, which compareWalkers checks against walk.
			compareWalkers(t, data)
		})
	}
}

// The JSON checks of the fast reader against encoding/json, value by value.
func TestValidJSON(t *testing.T) {
	tests := []string{
		`0`, `-0`, `1`, `-1`, `12`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `+1`, `1.5e3`,
		`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00G9"`, `"\u00e"`, `"\x41"`, `"\a"`,
		"\"\x01\"", "\"\x7f\"", "\"\xff\"", `"é"`, `"`, `"\`,
		`true`, `false`, `null`, `tru`, `nul`, `True`, `truex`,
		`{}`, `[]`, `{"a":1}`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:1}`, `[1,]`, `[,1]`, `[1 2]`, `[1,2]`,
		` [ 1 , { "b" : [ ] } ] `, `{"a":[{"b":null}]}`, `[`, `]`, `{`, `}`, `[[[]]]`, `[[[]]`, "\t1\n", `1 2`,
	}
	for _, s := range tests {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

// FuzzFastWalk: on any input, fastWalk agrees with walk or gives up.
func FuzzFastWalk(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "exports", "*", "*.json"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(exporttest.Generate(6))
	f.Add([]byte(`{"name":"c","type":"public_channel","id":1,"messages":[{"id":1,"text_entities":[{"type":"plain","text":"a\nb"}],"reactions":[]}]}`))
	f.Add([]byte(`{"chats":[{"name":"c","messages":[{"id":1e2,"text":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		compareWalkers(t, data)
	})
}

// FuzzValidJSON: the fast reader's JSON check is encoding/json's.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u00e9"]}`, `[1,]`, `"\x01"`, `-01`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}
