package importer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/export/exporttest"
	"github.com/tgflow/tgflow/services/ingest/importer"
	"github.com/tgflow/tgflow/testdata/sample"
)

// idsOnLog counts the messages of the log on filter by Nats-Msg-Id.
func idsOnLog(t *testing.T, js jetstream.JetStream, filter string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for read := 0; read < int(info.NumPending); {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			out[m.Headers().Get(jetstream.MsgIDHeader)]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages on %s", read, info.NumPending, filter)
		}
		read += got
	}
	return out
}

// failingJS fails every publish of a fact after the first facts, and every ledger write
// after the first ledger.
type failingJS struct {
	jetstream.JetStream
	facts, ledger *atomic.Int64
}

func (f failingJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	left := f.facts
	if strings.HasPrefix(m.Subject, "$KV.") {
		left = f.ledger
	}
	if left.Add(-1) < 0 {
		return nil, errors.New("injected: connection lost")
	}
	return f.JetStream.PublishMsgAsync(m, opts...)
}

// An import stopped midway and run again puts every fact on the log once and publishes
// nothing the log already has: the ledger covers the recorded part, the log itself the
// published but unrecorded part — whether the import stopped after one group of ledger
// entries was recorded and before the next, or while writing a group's entries. Run again
// after the log's duplicate window has passed (a re-publish would be a second copy), and
// within it (the log would drop a re-publish: the importer's duplicate count shows it).
func TestInterruptedImportAfterDuplicateWindowAddsNoCopy(t *testing.T) {
	tests := []struct {
		name          string
		facts, ledger int64
		window        bool // wait for the duplicate window to pass
	}{
		{"publish fails after a recorded group", 5000, 1 << 40, true},
		// One ledger write per group of 1000 facts (one channel): the 4th group fails.
		{"ledger writes fail midway", 1 << 40, 3, true},
		{"ledger writes fail midway, within the window", 1 << 40, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := natstest.Start(t)
			if tt.window {
				natstest.ShortDuplicateWindow(t, env, 200*time.Millisecond)
			}
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "result.json")
			if err := os.WriteFile(path, exporttest.Generate(10_000), 0o644); err != nil {
				t.Fatal(err)
			}
			open := func() *export.Export {
				t.Helper()
				x, err := export.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { x.Close() })
				return x
			}

			f := failingJS{env.JS, &atomic.Int64{}, &atomic.Int64{}}
			f.facts.Store(tt.facts)
			f.ledger.Store(tt.ledger)
			broken, err := importer.New(ctx, f, logx.Discard(), 10<<20)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := broken.Import(ctx, open()); err == nil {
				t.Fatal("interrupted import succeeded")
			}
			if logCount(t, env.JS) == 0 {
				t.Fatal("the interrupted import published nothing: the test shows nothing")
			}

			if tt.window {
				natstest.WaitDuplicateWindow(t, env)
			}
			x := open()
			res, err := newImporter(t, env).Import(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			if res.Duplicates != 0 {
				t.Fatalf("second import re-published %d facts the log had", res.Duplicates)
			}
			st := x.Stats()
			if res.Published+res.Unchanged != st.Posts+st.Albums+st.Channels {
				t.Fatalf("second import: published %d, unchanged %d; the export has %d posts, %d albums", res.Published, res.Unchanged, st.Posts, st.Albums)
			}
			for _, filter := range []string{"posts.>", "albums.>"} {
				for id, n := range idsOnLog(t, env.JS, filter) {
					if n != 1 {
						t.Fatalf("fact %s is %d times on the log", id, n)
					}
				}
			}
			if got := len(idsOnLog(t, env.JS, "posts.parsed.>")); got != st.Posts {
				t.Fatalf("%d posts on the log, want %d", got, st.Posts)
			}
			if got := len(idsOnLog(t, env.JS, "albums.parsed.>")); got != st.Albums {
				t.Fatalf("%d albums on the log, want %d", got, st.Albums)
			}
		})
	}
}

// ledgerEntries reads every entry of the import ledger but the start marks.
func ledgerEntries(t *testing.T, kv jetstream.KeyValue) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k := range keys.Keys() {
		if strings.HasPrefix(k, "started.") {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(e.Value())
	}
	return out
}

// A ledger value that is not a post version stops the import with the key, before anything
// is published (read as 0 it made every edited post of the channel look new): in a group's
// entry, and in a one-fact entry of the kind older imports wrote.
func TestCorruptLedgerEntryStopsTheImport(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, kv jetstream.KeyValue) (key string)
	}{
		{"group entry", func(t *testing.T, kv jetstream.KeyValue) string {
			for k, v := range ledgerEntries(t, kv) {
				if strings.HasPrefix(k, "b.") && strings.Contains(v, "p.") {
					if _, err := kv.Put(context.Background(), k, []byte(v+"p.1.2 17x\n")); err != nil {
						t.Fatal(err)
					}
					return k
				}
			}
			t.Fatal("no group entry with a post in the ledger")
			return ""
		}},
		{"one-fact entry of an older import", func(t *testing.T, kv jetstream.KeyValue) string {
			for _, v := range ledgerEntries(t, kv) {
				if k, _, ok := strings.Cut(v, " "); ok && strings.HasPrefix(k, "p.") {
					if _, err := kv.Put(context.Background(), k, []byte("17x")); err != nil {
						t.Fatal(err)
					}
					return k
				}
			}
			t.Fatal("no post in the ledger")
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := natstest.Start(t)
			im := newImporter(t, env)
			ctx := context.Background()
			x, err := export.OpenFS(sample.FS, sample.Root)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			if _, err := im.Import(ctx, x); err != nil {
				t.Fatal(err)
			}
			kv, err := env.JS.KeyValue(ctx, topology.BucketImported)
			if err != nil {
				t.Fatal(err)
			}
			key := tt.corrupt(t, kv)
			before := logCount(t, env.JS)
			x2, err := export.OpenFS(sample.FS, sample.Root)
			if err != nil {
				t.Fatal(err)
			}
			defer x2.Close()
			_, err = im.Import(ctx, x2)
			if !errors.Is(err, importer.ErrLedger) || !strings.Contains(err.Error(), key) {
				t.Fatalf("import over a corrupt ledger entry: %v, want ErrLedger naming %s", err, key)
			}
			if got := logCount(t, env.JS); got != before {
				t.Fatalf("log went from %d to %d facts", before, got)
			}
		})
	}
}

// The ledger records a group of facts in one entry per channel (not one entry per fact:
// that doubled the writes of an import), and a ledger of one-fact entries, as older imports
// wrote it, is still read: re-importing over it publishes nothing.
func TestLedgerOfOneFactEntriesIsRead(t *testing.T) {
	env := natstest.Start(t)
	im := newImporter(t, env)
	ctx := context.Background()
	x, err := export.OpenFS(sample.FS, sample.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	first, err := im.Import(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := env.JS.KeyValue(ctx, topology.BucketImported)
	if err != nil {
		t.Fatal(err)
	}
	entries := ledgerEntries(t, kv)
	st := first.Stats
	if len(entries) != st.Channels {
		t.Fatalf("%d ledger entries for %d channels in one group: %v", len(entries), st.Channels, entries)
	}
	facts := 0
	for k, v := range entries {
		if !strings.HasPrefix(k, "b.") {
			t.Fatalf("ledger entry %s is not a group's", k)
		}
		for line := range strings.Lines(v) {
			key, version, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
			if _, err := kv.Put(ctx, key, []byte(version)); err != nil {
				t.Fatal(err)
			}
			facts++
		}
		if err := kv.Purge(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if facts != st.Posts+st.Albums {
		t.Fatalf("the group entries record %d facts, want %d", facts, st.Posts+st.Albums)
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
		t.Fatalf("re-import over one-fact entries: published %d, unchanged %d, duplicates %d", second.Published, second.Unchanged, second.Duplicates)
	}
}
