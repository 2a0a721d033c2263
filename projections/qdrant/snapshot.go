package qdrant

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/projections"
)

// Snapshot sections.
const (
	// SectionPoints has one line per point: "<post_key> <point id> <vector> <payload>", the
	// vector as [x,y,…] with 4 decimals (Qdrant returns Cosine vectors normalized), the
	// payload as JSON with sorted keys.
	SectionPoints = "points"
	// SectionState has one line per post state in the meta collection (posts waiting for a
	// vector, tombstones, and the state behind every point): "<post_key> <state JSON>".
	SectionState = "state"
	// SectionCheckpoint has the one line "seq=<n>".
	SectionCheckpoint = "checkpoint"
	// SectionSpace has the one line "<space>" (Space.String()) recorded for the collection,
	// or "none".
	SectionSpace = "space"
)

// Snapshot scrolls the data and the meta collection and renders them canonically.
func (p *Projection) Snapshot(ctx context.Context) (projections.Snapshot, error) {
	t, err := p.target(ctx)
	if err != nil {
		return nil, err
	}
	snap := projections.Snapshot{SectionPoints: {}, SectionState: {}}
	err = p.scroll(ctx, t.data, nil, true, func(r *qd.RetrievedPoint) error {
		pl := fromPayload(r.GetPayload())
		key, _ := pl["post_key"].(string)
		b, err := json.Marshal(pl)
		if err != nil {
			return err
		}
		snap[SectionPoints] = append(snap[SectionPoints],
			fmt.Sprintf("%s %s %s %s", key, r.GetId().GetUuid(), formatVector(denseOf(r.GetVectors())), b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	posts := &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("kind", kindPost)}}
	err = p.scroll(ctx, t.meta, posts, false, func(r *qd.RetrievedPoint) error {
		s, err := stateFromPayload(r.GetPayload())
		if err != nil {
			return err
		}
		snap[SectionState] = append(snap[SectionState], s.Key+" "+string(encodeState(s)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	cp, err := p.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	snap[SectionCheckpoint] = []string{"seq=" + strconv.FormatUint(cp, 10)}
	sp, ok, err := readSpace(ctx, p.client, t.data)
	if err != nil {
		return nil, err
	}
	snap[SectionSpace] = []string{"none"}
	if ok {
		snap[SectionSpace] = []string{sp.String()}
	}
	return snap.Sort(), nil
}

func (p *Projection) scroll(ctx context.Context, collection string, filter *qd.Filter, withVectors bool, each func(*qd.RetrievedPoint) error) error {
	var offset *qd.PointId
	for {
		recs, next, err := p.client.ScrollAndOffset(ctx, &qd.ScrollPoints{
			CollectionName: collection,
			Filter:         filter,
			Offset:         offset,
			Limit:          qd.PtrOf(uint32(p.opts.ScrollPage)),
			WithPayload:    qd.NewWithPayload(true),
			WithVectors:    qd.NewWithVectors(withVectors),
		})
		if err != nil {
			return wrap("scroll "+collection, err)
		}
		for _, r := range recs {
			if err := each(r); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		offset = next
	}
}

func formatVector(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		s := strconv.FormatFloat(float64(x), 'f', 4, 32)
		if s == "-0.0000" {
			s = "0.0000"
		}
		parts[i] = s
	}
	return "[" + strings.Join(parts, ",") + "]"
}
