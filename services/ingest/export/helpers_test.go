package export_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/export"
)

// repoRoot is the module root, found from this file's location.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func fixture(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "testdata", "exports", filepath.FromSlash(rel))
}

func open(t testing.TB, rel string) *export.Export {
	t.Helper()
	e, err := export.Open(fixture(t, rel))
	if err != nil {
		t.Fatalf("open %s: %v", rel, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// collect runs Facts to the end and fails the test on an error.
func collect(t testing.TB, e *export.Export, sink export.MediaSink) []events.Event {
	t.Helper()
	var out []events.Event
	for ev, err := range e.Facts(context.Background(), sink) {
		if err != nil {
			t.Fatalf("facts: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

// posts indexes the post payloads of events by message id (one channel).
func posts(evs []events.Event) map[int64]*events.PostParsed {
	out := map[int64]*events.PostParsed{}
	for _, ev := range evs {
		if p, ok := ev.Data.(*events.PostParsed); ok {
			out[p.MessageID] = p
		}
	}
	return out
}

func albums(evs []events.Event) []*events.AlbumParsed {
	var out []*events.AlbumParsed
	for _, ev := range evs {
		if a, ok := ev.Data.(*events.AlbumParsed); ok {
			out = append(out, a)
		}
	}
	return out
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
