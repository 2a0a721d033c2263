package tagger_test

import (
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/services/tagger"
)

func TestMemoryDFCountsEachSequenceOnce(t *testing.T) {
	df := tagger.NewMemoryDF()
	if df.N() != 0 || df.Seq() != 0 || df.DF("рынок") != 0 {
		t.Fatalf("new store: n %d seq %d", df.N(), df.Seq())
	}
	steps := []struct {
		seq   uint64
		stems []string
		ok    bool
	}{
		{3, []string{"рынок", "нефт"}, true},
		{3, []string{"рынок"}, false}, // redelivered
		{2, []string{"рынок"}, false}, // older than the last observed
		{10, []string{"рынок", "блокчейн"}, true},
	}
	for _, s := range steps {
		if got := df.Observe(s.seq, s.stems); got != s.ok {
			t.Fatalf("Observe(%d) = %v, want %v", s.seq, got, s.ok)
		}
	}
	if df.N() != 2 || df.Seq() != 10 || df.DF("рынок") != 2 || df.DF("нефт") != 1 || df.DF("блокчейн") != 1 || df.DF("газ") != 0 {
		t.Fatalf("n %d seq %d df(рынок) %d df(нефт) %d df(блокчейн) %d", df.N(), df.Seq(), df.DF("рынок"), df.DF("нефт"), df.DF("блокчейн"))
	}
}

// TestSnapshotThenReplayEqualsAFullReplay is what a restarting stage relies on: restore the
// snapshot, replay the log from its sequence (observing again what it already holds is
// harmless), and the store is the one a replay from the start builds.
func TestSnapshotThenReplayEqualsAFullReplay(t *testing.T) {
	posts := loadPosts(t)
	full := tagger.NewMemoryDF()
	for i, p := range posts {
		full.Observe(uint64(i+1), tagger.Terms(p.Text))
	}
	half := tagger.NewMemoryDF()
	for i, p := range posts[:len(posts)/2] {
		half.Observe(uint64(i+1), tagger.Terms(p.Text))
	}
	b, err := half.Snapshot().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var snap tagger.Snapshot
	if err := snap.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if snap.Seq != uint64(len(posts)/2) {
		t.Fatalf("snapshot seq %d, want %d", snap.Seq, len(posts)/2)
	}
	restored, err := tagger.RestoreMemoryDF(snap)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range posts { // the whole log again: the first half must be ignored
		restored.Observe(uint64(i+1), tagger.Terms(p.Text))
	}
	a, c := full.Snapshot(), restored.Snapshot()
	if a.N != c.N || a.Seq != c.Seq || !maps.Equal(a.DF, c.DF) {
		t.Fatalf("restored+replayed n %d seq %d (%d stems), full replay n %d seq %d (%d stems)", c.N, c.Seq, len(c.DF), a.N, a.Seq, len(a.DF))
	}
	b2, err := full.Snapshot().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b3, err := restored.Snapshot().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(b3) {
		t.Fatal("equal states encode to different bytes")
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	tests := []struct {
		name string
		snap tagger.Snapshot
	}{
		{"version", tagger.Snapshot{Version: 99, N: 1, DF: map[string]int{"a": 1}}},
		{"negative n", tagger.Snapshot{Version: 1, N: -1}},
		{"df above n", tagger.Snapshot{Version: 1, N: 1, DF: map[string]int{"a": 2}}},
		{"zero df", tagger.Snapshot{Version: 1, N: 1, DF: map[string]int{"a": 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tagger.RestoreMemoryDF(tc.snap); !errors.Is(err, tagger.ErrSnapshot) {
				t.Fatalf("err %v, want ErrSnapshot", err)
			}
		})
	}
	var s tagger.Snapshot
	if err := s.UnmarshalBinary([]byte("not gzip")); !errors.Is(err, tagger.ErrSnapshot) {
		t.Fatalf("garbage: err %v, want ErrSnapshot", err)
	}
}

func TestMemoryDFIsSafeForConcurrentUse(t *testing.T) {
	df := tagger.NewMemoryDF()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				df.Observe(uint64(g*1000+i+1), []string{"a", "b"})
				_ = df.DF("a") + df.N()
			}
		})
	}
	wg.Wait()
	// Sequences interleave: every Observe below the running maximum is ignored, so only the
	// count's bounds are certain.
	if n := df.N(); n < 500 || n > 2000 || df.DF("a") != n {
		t.Fatalf("n %d df(a) %d", n, df.DF("a"))
	}
}
