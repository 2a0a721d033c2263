package projectiontest

import (
	"context"
	"errors"
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
// deletion is applied; a rebuild from the log gives a state identical to the live one; a
// batch out of log order is refused and changes nothing.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	s := NewScript()
	last := s.Facts[len(s.Facts)-1].Seq

	live := h.New(t)
	ApplyBatches(t, live, s.Facts, 5)
	want := Snap(t, live)
	if cp, err := live.Checkpoint(ctx); err != nil || cp != last {
		t.Fatalf("checkpoint after script = %d, %v; want %d", cp, err, last)
	}

	t.Run("expected state", func(t *testing.T) { h.Expect(t, s, want) })

	t.Run("redelivered batches change nothing", func(t *testing.T) {
		ApplyBatches(t, live, s.Facts, 5)
		ApplyBatches(t, live, s.Facts[len(s.Facts)/2:], 3)
		AssertSame(t, want, Snap(t, live))
	})

	t.Run("stale revisions are ignored", func(t *testing.T) {
		p := h.New(t)
		ApplyBatches(t, p, s.Without(s.Stale...), 4)
		AssertSame(t, want, Snap(t, p))
	})

	t.Run("deletion is applied", func(t *testing.T) {
		p := h.New(t)
		ApplyBatches(t, p, s.Until(s.Deletion), 6)
		before := Snap(t, p)
		ApplyBatches(t, p, s.Facts, 6)
		after := Snap(t, p)
		if len(before.Digest().Diff(after.Digest())) == 0 {
			t.Fatal("the deletion (and the facts after it) changed nothing")
		}
		AssertSame(t, want, after)
	})

	t.Run("rebuild gives the live state", func(t *testing.T) {
		p := h.New(t)
		ApplyBatches(t, p, s.Facts, len(s.Facts))
		AssertSame(t, want, Snap(t, p))
	})

	t.Run("one fact per batch gives the live state", func(t *testing.T) {
		p := h.New(t)
		ApplyBatches(t, p, s.Facts, 1)
		AssertSame(t, want, Snap(t, p))
	})

	t.Run("facts out of log order are refused", func(t *testing.T) {
		// A live batch once held new facts and then a redelivery, [15 … 20, 11]: taking its
		// last fact for its end, the Neo4j projection applied nothing and reported success.
		p := h.New(t)
		ApplyBatches(t, p, s.Facts[:14], 7)
		before := Snap(t, p)
		batch := append(slices.Clone(s.Facts[14:20]), s.Facts[10])
		err := p.Apply(ctx, batch)
		if !errors.Is(err, projections.ErrOrder) || errors.Is(err, projections.ErrBackend) {
			t.Fatalf("Apply(seq %d…%d, %d) = %v; want ErrOrder, not ErrBackend", batch[0].Seq, batch[5].Seq, batch[6].Seq, err)
		}
		AssertSame(t, before, Snap(t, p))
		if cp, err := p.Checkpoint(ctx); err != nil || cp != s.Facts[13].Seq {
			t.Fatalf("checkpoint after the refused batch = %d, %v; want %d", cp, err, s.Facts[13].Seq)
		}
		ApplyBatches(t, p, s.Facts[14:], 7)
		AssertSame(t, want, Snap(t, p))
	})
}

// ApplyBatches applies facts to p in batches of size, failing the test on an error.
func ApplyBatches(t testing.TB, p projections.Projection, facts []projections.Fact, size int) {
	t.Helper()
	for chunk := range slices.Chunk(facts, size) {
		if err := p.Apply(context.Background(), chunk); err != nil {
			t.Fatalf("apply batch at seq %d: %v", chunk[0].Seq, err)
		}
	}
}

// Snap returns p's snapshot, sorted, failing the test on an error.
func Snap(t testing.TB, p projections.Projection) projections.Snapshot {
	t.Helper()
	s, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s.Sort()
}

// AssertSame fails the test when two snapshots differ, showing both.
func AssertSame(t testing.TB, want, got projections.Snapshot) {
	t.Helper()
	if diff := want.Digest().Diff(got.Digest()); len(diff) > 0 {
		t.Fatalf("snapshots differ:\n%v\nwant:\n%s\ngot:\n%s", diff, want, got)
	}
}
