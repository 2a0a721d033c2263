package neo4j_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/neo4j"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

// TestApplyRefusesFactsOutOfLogOrder hands Apply the batch a live projector once built when
// a redelivery arrived behind new facts: 15…20, then 11. Taking the last fact's sequence as
// the batch's end, Apply saw 11 ≤ checkpoint 14 and returned without applying 15…20, which
// were acked and lost. Apply must refuse such a batch and leave the graph as it was.
func TestApplyRefusesFactsOutOfLogOrder(t *testing.T) {
	d := newDriver(t)
	s := projectiontest.NewScript()
	p := newProjection(t, d)
	apply(t, p, s.Facts[:14], 7)
	before := snapshot(t, p)

	batch := append(append([]projections.Fact{}, s.Facts[14:20]...), s.Facts[10])
	err := p.Apply(context.Background(), batch)
	if !errors.Is(err, neo4j.ErrOrder) {
		t.Fatalf("Apply(seq %d…%d, %d) = %v, want ErrOrder", batch[0].Seq, batch[5].Seq, batch[6].Seq, err)
	}
	if errors.Is(err, projections.ErrBackend) {
		t.Fatalf("an order error is the caller's bug, not a backend outage: %v", err)
	}
	assertSame(t, before, snapshot(t, p))
	if cp, err := p.Checkpoint(context.Background()); err != nil || cp != s.Facts[13].Seq {
		t.Fatalf("checkpoint %d, %v; want %d", cp, err, s.Facts[13].Seq)
	}

	// The same facts in order then give the graph of a clean replay (one graph: snapshot,
	// clear, replay, compare).
	apply(t, p, s.Facts[14:], 7)
	got := snapshot(t, p)
	clean := newProjection(t, d)
	apply(t, clean, s.Facts, len(s.Facts))
	assertSame(t, snapshot(t, clean), got)
}
