package export_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/media"
)

// FuzzParse feeds arbitrary bytes to the parser as a result.json. It must never panic; a
// rejected file fails with a *ParseError inside the file; a file Open accepts must go
// through Facts without an error, with every event valid and the counts Open promised.
// (In tests every message the fast reader accepts is also checked against the exact one.)
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(repoRoot(f), "testdata", "exports", "*", "*.json"))
	seeds = append(seeds, filepath.Join(repoRoot(f), "testdata", "sample", "DataExport", "result.json"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(genExport(8))
	f.Add([]byte(`{"name":"c","type":"public_channel","id":1,"messages":[{"id":1,"type":"message","date_unixtime":"1","photo":"photos/a.jpg","text":["x",{"type":"link","text":"example.com"}]},{"id":2,"date_unixtime":"1","photo":"photos/a.jpg","text":""}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"result.json":  {Data: data},
			"photos/a.jpg": {Data: []byte("not really a jpeg")},
		}
		e, err := export.OpenFS(fsys, "result.json")
		if err != nil {
			var pe *export.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			if pe.Offset < 0 || pe.Offset > int64(len(data)) {
				t.Fatalf("offset %d outside the file (%d bytes): %v", pe.Offset, len(data), err)
			}
			return
		}
		st := e.Stats()
		var posts, albums int
		for ev, err := range e.Facts(context.Background(), media.NewMemory(0)) {
			if err != nil {
				t.Fatalf("Facts failed on a file Open accepted: %v", err)
			}
			if _, _, err := events.Encode(ev); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
			switch ev.Data.(type) {
			case *events.PostParsed:
				posts++
			case *events.AlbumParsed:
				albums++
			}
		}
		if posts != st.Posts || albums != st.Albums {
			t.Fatalf("emitted %d posts and %d albums, Open counted %d and %d", posts, albums, st.Posts, st.Albums)
		}
		// Read through a spool, the same facts come out.
		spooled, err := export.OpenFS(fsys, "result.json", export.Spool(t.TempDir()))
		if err != nil {
			t.Fatalf("a spooled Open failed where a plain one succeeded: %v", err)
		}
		defer spooled.Close()
		sameFacts(t, collect(t, spooled, media.NewMemory(0)), collect(t, e, media.NewMemory(0)))
	})
}
