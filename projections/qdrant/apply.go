package qdrant

import (
	"bytes"
	"context"
	"fmt"

	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// Apply applies the facts above the checkpoint and stores the last sequence as the new
// checkpoint; see the package comment for why a crash at any point is harmless.
func (p *Projection) Apply(ctx context.Context, facts []projections.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	if err := projections.CheckOrder(facts); err != nil {
		return fmt.Errorf("qdrant apply: %w", err)
	}
	t, err := p.target(ctx)
	if err != nil {
		return err
	}
	// 1. One read for the checkpoint and the states of every post the batch touches.
	var keys []string
	seen := map[string]bool{}
	for _, f := range facts {
		if k, ok := postKeyOf(f.Event); ok && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	ids := []*qd.PointId{qd.NewID(checkpointID)}
	for _, k := range keys {
		ids = append(ids, qd.NewID(PointID(k)))
	}
	recs, err := p.client.Get(ctx, &qd.GetPoints{CollectionName: t.meta, Ids: ids, WithPayload: qd.NewWithPayload(true)})
	if err != nil {
		return wrap("read states", err)
	}
	cp := checkpointOf(recs)
	last := facts[len(facts)-1].Seq
	if last <= cp {
		return nil // a redelivery of applied facts
	}
	states := map[string]*postState{}
	stored := map[string][]byte{}
	for _, r := range recs {
		if r.GetId().GetUuid() == checkpointID {
			continue
		}
		s, err := stateFromPayload(r.GetPayload())
		if err != nil {
			return fmt.Errorf("qdrant: meta record %s: %w", r.GetId().GetUuid(), err)
		}
		states[s.Key] = s
		stored[s.Key] = encodeState(s)
	}

	// 2. Fold the new facts into the states.
	vectors := map[string][]float32{}
	var touched []string
	isTouched := map[string]bool{}
	state := func(key string) *postState {
		s, ok := states[key]
		if !ok {
			s = &postState{Key: key}
			states[key] = s
		}
		if !isTouched[key] {
			isTouched[key] = true
			touched = append(touched, key)
		}
		return s
	}
	for _, f := range facts {
		if f.Seq <= cp {
			continue
		}
		switch d := f.Event.Data.(type) {
		case *events.PostParsed:
			state(d.Key()).applyPost(&d.Post)
		case *events.PostEdited:
			state(d.Key()).applyPost(&d.Post)
		case *events.PostTagged:
			state(d.Key()).applyTags(d)
		case *events.PostEnriched:
			state(d.Key()).applyPages(d)
		case *events.PostVisionAnalyzed:
			state(d.Key()).applyVision(d)
		case *events.PostDeleted:
			state(d.Key()).applyDelete(d)
		case *events.PostEmbedded:
			if sp := SpaceOfEmbedding(d); sp != p.opts.Space {
				p.skip(sp, f.Seq, d.Key())
				continue
			}
			if len(d.Vector) != t.dim {
				return fmt.Errorf("qdrant: seq %d: %s has a %d-dimensional vector, collection %s has %d: %w",
					f.Seq, d.Key(), len(d.Vector), t.data, t.dim, ErrDimension)
			}
			if state(d.Key()).applyVector(d) {
				vectors[d.Key()] = d.Vector
			}
		}
	}

	// 3. Derive the point writes from the new states.
	var (
		upserts    []*qd.PointStruct
		deletes    []*qd.PointId
		metas      []*qd.PointStruct
		reread     []string
		payloadFor = map[string]map[string]*qd.Value{}
	)
	for _, key := range touched {
		s := states[key]
		enc := encodeState(s)
		changed := !bytes.Equal(enc, stored[key])
		vec, newVector := vectors[key]
		if changed {
			mp, err := stateToPayload(s)
			if err != nil {
				return fmt.Errorf("qdrant: state of %s: %w", key, err)
			}
			metas = append(metas, &qd.PointStruct{Id: qd.NewID(PointID(key)), Vectors: qd.NewVectors(1), Payload: mp})
		}
		switch {
		case s.Deleted:
			if changed { // the tombstone is new: remove the point
				deletes = append(deletes, qd.NewID(PointID(key)))
			}
		case s.Vector != nil && (changed || newVector):
			m, err := s.payload()
			if err != nil {
				return fmt.Errorf("qdrant: payload of %s: %w", key, err)
			}
			pl, err := toPayload(m)
			if err != nil {
				return fmt.Errorf("qdrant: payload of %s: %w", key, err)
			}
			if newVector {
				upserts = append(upserts, &qd.PointStruct{Id: qd.NewID(PointID(key)), Vectors: qd.NewVectors(vec...), Payload: pl})
			} else {
				reread = append(reread, key)
				payloadFor[key] = pl
			}
		}
	}
	// A payload change of a post that already has a point needs its stored vector.
	if len(reread) > 0 {
		got, err := p.vectorsOf(ctx, t.data, reread)
		if err != nil {
			return err
		}
		for _, key := range reread {
			// A missing point means a deletion above the checkpoint was already written
			// before a crash; the redelivered deletion removes this post again, so there is
			// nothing to restore.
			if vec, ok := got[PointID(key)]; ok {
				upserts = append(upserts, &qd.PointStruct{Id: qd.NewID(PointID(key)), Vectors: qd.NewVectors(vec...), Payload: payloadFor[key]})
			}
		}
	}

	// 4. Points, then states, then the checkpoint: each write finished (wait=true) before the
	// next starts, so a stored state is never ahead of its point and the checkpoint never
	// ahead of either.
	var ops []*qd.PointsUpdateOperation
	if len(upserts) > 0 {
		ops = append(ops, qd.NewPointsUpdateUpsert(&qd.PointsUpdateOperation_PointStructList{Points: upserts}))
	}
	if len(deletes) > 0 {
		ops = append(ops, qd.NewPointsUpdateDeletePoints(&qd.PointsUpdateOperation_DeletePoints{Points: qd.NewPointsSelectorIDs(deletes)}))
	}
	if len(ops) > 0 {
		if _, err := p.client.UpdateBatch(ctx, &qd.UpdateBatchPoints{CollectionName: t.data, Operations: ops, Wait: qd.PtrOf(true)}); err != nil {
			return wrap("write points", err)
		}
	}
	if len(metas) > 0 {
		if _, err := p.client.Upsert(ctx, &qd.UpsertPoints{CollectionName: t.meta, Points: metas, Wait: qd.PtrOf(true)}); err != nil {
			return wrap("write states", err)
		}
	}
	return p.writeCheckpoint(ctx, t.meta, last)
}

// skip counts an embedding of another space than the projection's and logs the first one
// of each space: a log that outlived an embedder change holds vectors of both, and they must
// never share a collection.
func (p *Projection) skip(sp Space, seq uint64, key string) {
	if p.opts.OnSkip != nil {
		p.opts.OnSkip(sp)
	}
	p.mu.Lock()
	first := !p.skipped[sp]
	p.skipped[sp] = true
	p.mu.Unlock()
	if first {
		p.opts.Logger.Warn("qdrant: skipping embeddings of another vector space (logged once per space)",
			"space", sp.String(), "serves", p.opts.Space.String(), "alias", p.alias, "first_seq", seq, "post", key)
	}
}

func (p *Projection) writeCheckpoint(ctx context.Context, meta string, seq uint64) error {
	pl, err := toPayload(map[string]any{"kind": kindCheckpoint, "seq": int64(seq)})
	if err != nil {
		return err
	}
	_, err = p.client.Upsert(ctx, &qd.UpsertPoints{
		CollectionName: meta,
		Points:         []*qd.PointStruct{{Id: qd.NewID(checkpointID), Vectors: qd.NewVectors(1), Payload: pl}},
		Wait:           qd.PtrOf(true),
	})
	if err != nil {
		return wrap("write checkpoint", err)
	}
	return nil
}

// vectorsOf reads the stored vectors of posts' points, by point id.
func (p *Projection) vectorsOf(ctx context.Context, collection string, keys []string) (map[string][]float32, error) {
	ids := make([]*qd.PointId, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, qd.NewID(PointID(k)))
	}
	recs, err := p.client.Get(ctx, &qd.GetPoints{
		CollectionName: collection,
		Ids:            ids,
		WithPayload:    qd.NewWithPayload(false),
		WithVectors:    qd.NewWithVectors(true),
	})
	if err != nil {
		return nil, wrap("read vectors", err)
	}
	out := map[string][]float32{}
	for _, r := range recs {
		if v := denseOf(r.GetVectors()); v != nil {
			out[r.GetId().GetUuid()] = v
		}
	}
	return out, nil
}

// denseOf reads the unnamed dense vector of a point (the deprecated data field as fallback).
func denseOf(v *qd.VectorsOutput) []float32 {
	out := v.GetVector()
	if d := out.GetDense(); d != nil {
		return d.GetData()
	}
	//lint:ignore SA1019 servers before Qdrant 1.13 answer in the deprecated data field
	return out.GetData()
}

// postKeyOf returns the post key of the fact types the projection uses.
func postKeyOf(e events.Event) (string, bool) {
	switch d := e.Data.(type) {
	case *events.PostParsed, *events.PostEdited, *events.PostTagged, *events.PostEnriched, *events.PostVisionAnalyzed,
		*events.PostDeleted, *events.PostEmbedded:
		return d.Key(), true
	}
	return "", false
}
