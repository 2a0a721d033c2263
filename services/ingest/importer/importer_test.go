package importer_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/importer"
	"github.com/tgflow/tgflow/testdata/sample"
)

func logCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func newImporter(t testing.TB, env *natstest.Env) *importer.Importer {
	t.Helper()
	im, err := importer.New(context.Background(), env.JS, logx.Discard(), 10<<20)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestImportSampleTwicePublishesNothingNew(t *testing.T) {
	env := natstest.Start(t)
	im := newImporter(t, env)
	ctx := context.Background()
	// Spooled, as tgflow import reads it: media are stored while the spool is replayed.
	x, err := export.OpenFS(sample.FS, sample.Root, export.Spool(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	first, err := im.Import(ctx, x)
	x.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := first.Stats
	// Every post and album of the sample, and one channels.synced per imported channel.
	if first.Duplicates != 0 {
		t.Fatalf("first import: %d duplicates", first.Duplicates)
	}
	if want := st.Posts + st.Albums + st.Channels; first.Published != want || first.Unchanged != 0 {
		t.Fatalf("first import published %d (unchanged %d), want %d", first.Published, first.Unchanged, want)
	}
	if got := logCount(t, env.JS); got != uint64(first.Published) {
		t.Fatalf("log holds %d facts, import said %d", got, first.Published)
	}
	obs, err := env.JS.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) == 0 || len(objects) >= st.MediaFiles {
		t.Fatalf("%d media objects for %d files: the same image in two channels must be stored once", len(objects), st.MediaFiles)
	}

	x2, err := export.OpenFS(sample.FS, sample.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer x2.Close()
	second, err := im.Import(ctx, x2)
	if err != nil {
		t.Fatal(err)
	}
	if second.Published != 0 || second.Unchanged != st.Posts+st.Albums || second.Duplicates != 0 {
		t.Fatalf("second import published %d, unchanged %d, duplicates %d", second.Published, second.Unchanged, second.Duplicates)
	}
	if got := logCount(t, env.JS); got != uint64(first.Published) {
		t.Fatalf("log grew to %d facts on re-import", got)
	}
}

// A later export with one message edited publishes that post's new version only.
func TestImportPublishesNewVersions(t *testing.T) {
	env := natstest.Start(t)
	im := newImporter(t, env)
	ctx := context.Background()
	src, err := os.ReadFile("../../../testdata/exports/channel/result.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "result.json")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() importer.Result {
		x, err := export.Open(path, export.Spool(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		r, err := im.Import(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		if r.Duplicates != 0 {
			t.Fatalf("import re-published %d facts the log had", r.Duplicates)
		}
		return r
	}
	first := run()
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	msgs := doc["messages"].([]any)
	var edited bool
	for _, m := range msgs {
		mm := m.(map[string]any)
		if mm["type"] == "message" && mm["text"] != "" && mm["photo"] == nil && mm["file"] == nil {
			mm["edited_unixtime"] = "1900000000"
			mm["edited"] = "2030-03-17T17:46:40"
			edited = true
			break
		}
	}
	if !edited {
		t.Fatal("fixture has no plain text message to edit")
	}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	second := run()
	if second.Published != 2 { // the new version and the channel's sync
		t.Fatalf("re-import after an edit published %d facts, want 2 (first import published %d)", second.Published, first.Published)
	}
}

// An export validated by Open and then overwritten with a malformed file (each fixture in
// turn) before the import publishes nothing and records nothing: Import fails with
// ErrChanged. (`tgflow import` of a malformed file fails earlier, in Open: see
// cmd/tgflow's TestImportMalformedExportsLeaveTheLogUnchanged.)
func TestMalformedExportPublishesNothing(t *testing.T) {
	env := natstest.Start(t)
	im := newImporter(t, env)
	ctx := context.Background()
	valid, err := os.ReadFile("../../../testdata/exports/channel/result.json")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../../testdata/exports/malformed/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("malformed fixtures: %v (%d files)", err, len(files))
	}
	// The log and the ledger hold something already: "unchanged" is not "empty".
	sx, err := export.OpenFS(sample.FS, sample.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer sx.Close()
	if _, err := im.Import(ctx, sx); err != nil {
		t.Fatal(err)
	}
	state := func() (uint64, uint64, int) {
		t.Helper()
		s, err := env.JS.Stream(ctx, topology.LogStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := env.JS.KeyValue(ctx, topology.BucketImported)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs, info.State.LastSeq, int(st.Values())
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "result.json")
			if err := os.WriteFile(path, valid, 0o644); err != nil {
				t.Fatal(err)
			}
			x, err := export.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			bad, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			msgs, last, ledger := state()
			_, err = im.Import(ctx, x)
			if !errors.Is(err, export.ErrChanged) {
				t.Fatalf("import of an export overwritten with %s: %v, want ErrChanged", f, err)
			}
			if m, l, n := state(); m != msgs || l != last || n != ledger {
				t.Fatalf("log %d messages (last %d), ledger %d values; before: %d (last %d), %d", m, l, n, msgs, last, ledger)
			}
		})
	}
}
