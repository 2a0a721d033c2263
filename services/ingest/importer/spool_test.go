package importer_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/export/exporttest"
)

// An export of several ledger groups, imported from its spool: the log gets every fact of
// the export exactly once (none dropped, none twice), and a re-import publishes nothing,
// finds every post and album in the ledger, and leaves the log as it was. No spool file is
// left behind.
func TestSpooledImportPublishesEveryFactOnce(t *testing.T) {
	env := natstest.Start(t)
	im := newImporter(t, env)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "result.json")
	if err := os.WriteFile(path, exporttest.Generate(3500), 0o644); err != nil {
		t.Fatal(err)
	}
	spoolDir := t.TempDir()
	open := func() *export.Export {
		t.Helper()
		x, err := export.Open(path, export.Spool(spoolDir))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x := open()
	var want []string
	for ev, err := range x.Facts(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID)
	}
	first, err := im.Import(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	st := first.Stats
	if st.Posts+st.Albums != len(want) || len(want) < 3000 {
		t.Fatalf("%d facts from the export, stats say %d posts and %d albums", len(want), st.Posts, st.Albums)
	}
	if first.Published != len(want)+1 || first.Unchanged != 0 || first.Duplicates != 0 {
		t.Fatalf("first import: published %d, unchanged %d, duplicates %d; want %d facts and the channel's sync",
			first.Published, first.Unchanged, first.Duplicates, len(want))
	}
	var got []string
	for _, ev := range natstest.Facts(t, env.JS) {
		if ev.Type != events.TypeChannelSynced {
			got = append(got, ev.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the log holds %d facts of the export, want %d in the export's order", len(got), len(want))
	}

	x2 := open()
	defer x2.Close()
	second, err := im.Import(ctx, x2)
	if err != nil {
		t.Fatal(err)
	}
	if second.Published != 0 || second.Unchanged != len(want) || second.Duplicates != 0 {
		t.Fatalf("re-import: published %d, unchanged %d, duplicates %d; want 0, %d, 0", second.Published, second.Unchanged, second.Duplicates, len(want))
	}
	if n := logCount(t, env.JS); n != uint64(first.Published) {
		t.Fatalf("the log grew from %d to %d facts on re-import", first.Published, n)
	}
	if left, err := os.ReadDir(spoolDir); err != nil || len(left) != 0 {
		t.Fatalf("spool folder: %v, %d file(s) left", err, len(left))
	}
}
