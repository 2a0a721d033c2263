package projectiontest

import (
	"context"
	"slices"
	"testing"

	"github.com/tgflow/tgflow/projections"
)

// Harness adapts one backend to the contract suite.
type Harness struct {
	// New returns a projection over a fresh, empty target; the harness cleans it up.
	New func(t *testing.T) projections.Projection
	// Expect asserts backend-specific content of the snapshot after the whole script.
	Expect func(t *testing.T, s Script, snap projections.Snapshot)
}

// Run runs the contract suite: a scripted sequence of facts gives the expected state;
// applying a batch twice (redelivery) changes nothing; stale revisions are ignored; a
// deletion is applied; a rebuild from the log gives a state identical to the live one.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	s := NewScript()
	last := s.Facts[len(s.Facts)-1].Seq

	live := h.New(t)
	applyBatches(t, live, s.Facts, 5)
	want := snapshot(t, live)
	if cp, err := live.Checkpoint(ctx); err != nil || cp != last {
		t.Fatalf("checkpoint after script = %d, %v; want %d", cp, err, last)
	}

	t.Run("expected state", func(t *testing.T) { h.Expect(t, s, want) })

	t.Run("redelivered batches change nothing", func(t *testing.T) {
		applyBatches(t, live, s.Facts, 5)
		applyBatches(t, live, s.Facts[len(s.Facts)/2:], 3)
		assertSame(t, want, snapshot(t, live))
	})

	t.Run("stale revisions are ignored", func(t *testing.T) {
		p := h.New(t)
		applyBatches(t, p, s.Without(s.Stale...), 4)
		assertSame(t, want, snapshot(t, p))
	})

	t.Run("deletion is applied", func(t *testing.T) {
		p := h.New(t)
		applyBatches(t, p, s.Until(s.Deletion), 6)
		before := snapshot(t, p)
		applyBatches(t, p, s.Facts, 6)
		after := snapshot(t, p)
		if len(before.Digest().Diff(after.Digest())) == 0 {
			t.Fatal("the deletion (and the facts after it) changed nothing")
		}
		assertSame(t, want, after)
	})

	t.Run("rebuild gives the live state", func(t *testing.T) {
		p := h.New(t)
		applyBatches(t, p, s.Facts, len(s.Facts))
		assertSame(t, want, snapshot(t, p))
	})

	t.Run("one fact per batch gives the live state", func(t *testing.T) {
		p := h.New(t)
		applyBatches(t, p, s.Facts, 1)
		assertSame(t, want, snapshot(t, p))
	})
}

func applyBatches(t *testing.T, p projections.Projection, facts []projections.Fact, size int) {
	t.Helper()
	for chunk := range slices.Chunk(facts, size) {
		if err := p.Apply(context.Background(), chunk); err != nil {
			t.Fatalf("apply batch at seq %d: %v", chunk[0].Seq, err)
		}
	}
}

func snapshot(t *testing.T, p projections.Projection) projections.Snapshot {
	t.Helper()
	s, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s.Sort()
}

func assertSame(t *testing.T, want, got projections.Snapshot) {
	t.Helper()
	if diff := want.Digest().Diff(got.Digest()); len(diff) > 0 {
		t.Fatalf("snapshots differ:\n%v\nwant:\n%s\ngot:\n%s", diff, want, got)
	}
}
