package neo4j

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/projections"
)

// Neo4j Community has a single user database, so there is no room for a shadow graph next
// to the live one: a rebuild clears the graph and refills it in place. The checkpoint node
// carries the rebuild's state (rebuild: "clearing" → "filling", rebuild_id naming it), and
// every writer locks that node first:
//
//   - Shadow fences the live projection (its Apply fails with ErrRebuilding, marked
//     projections.ErrBackend, so the live projector backs off and retries without acking),
//     resets the checkpoint to 0, clears the graph in batches and returns the shadow: a
//     projection over the same graph that only writes while its rebuild is filling.
//     Calling Shadow during a rebuild resumes it (and finishes an interrupted clear).
//   - Swap ends the rebuild: the fence is lifted, and the live projector continues from the
//     shadow's checkpoint (its redelivered facts at or below it are skipped).
//   - DropShadow abandons a rebuild. The old graph was cleared when it started and cannot
//     come back: the graph is cleared again and left empty at checkpoint 0, so that
//     whatever fills it next replays the log from sequence 1.
//
// From Shadow to Swap readers see a partial graph: empty at first, then the log's state at
// the shadow's checkpoint. That is the downtime of a Community rebuild.

// Shadow starts (or resumes) an in-place rebuild and returns the projection that refills the
// graph.
func (p *Projection) Shadow(ctx context.Context) (projections.Projection, error) {
	var id string
	resume := false
	err := p.write(ctx, "start rebuild", func(tx nd.ExplicitTransaction) error {
		st, err := lockCheckpoint(ctx, tx)
		if err != nil {
			return err
		}
		switch st.rebuild {
		case rebuildFilling:
			id, resume = st.rebuildID, true
			return nil
		case rebuildClearing: // interrupted while clearing: clear again
			id = st.rebuildID
		default:
			id = newRebuildID()
		}
		return exec(ctx, tx, `MATCH (c:Checkpoint {projection: $name})
SET c.seq = 0, c.rebuild = $state, c.rebuild_id = $id, c.rebuild_started_at = coalesce(c.rebuild_started_at, datetime())`,
			map[string]any{"name": Name, "state": rebuildClearing, "id": id})
	})
	if err != nil {
		return nil, err
	}
	shadow := &Projection{driver: p.driver, opts: p.opts, rebuild: id}
	if resume {
		return shadow, nil
	}
	if err := p.clearGraph(ctx); err != nil {
		return nil, err
	}
	err = p.write(ctx, "start rebuild", func(tx nd.ExplicitTransaction) error {
		st, err := lockCheckpoint(ctx, tx)
		if err != nil {
			return err
		}
		if st.rebuild != rebuildClearing || st.rebuildID != id {
			return fmt.Errorf("%w: rebuild %s was ended while clearing (state %q)", ErrNotShadow, id, st.rebuild)
		}
		return exec(ctx, tx, `MATCH (c:Checkpoint {projection: $name}) SET c.rebuild = $state`,
			map[string]any{"name": Name, "state": rebuildFilling})
	})
	if err != nil {
		return nil, err
	}
	return shadow, nil
}

// Swap ends the rebuild of shadow: the live projection writes again, from the shadow's
// checkpoint. Swapping an already swapped shadow does nothing.
func (p *Projection) Swap(ctx context.Context, shadow projections.Projection) error {
	s, ok := shadow.(*Projection)
	if !ok || s.rebuild == "" {
		return fmt.Errorf("neo4j swap: %w: %T", ErrNotShadow, shadow)
	}
	return p.write(ctx, "swap", func(tx nd.ExplicitTransaction) error {
		st, err := lockCheckpoint(ctx, tx)
		if err != nil {
			return err
		}
		switch {
		case st.rebuild == "" && st.swappedID == s.rebuild:
			return nil
		case st.rebuild != rebuildFilling || st.rebuildID != s.rebuild:
			return fmt.Errorf("%w: rebuild %s (graph: %q, rebuild %q)", ErrNotShadow, s.rebuild, st.rebuild, st.rebuildID)
		}
		return exec(ctx, tx, `MATCH (c:Checkpoint {projection: $name})
REMOVE c.rebuild, c.rebuild_id, c.rebuild_started_at
SET c.swapped_id = $id`, map[string]any{"name": Name, "id": s.rebuild})
	})
}

// DropShadow abandons a running rebuild: the graph is cleared and left empty at checkpoint
// 0, and the live projection writes again. Without a running rebuild it does nothing.
func (p *Projection) DropShadow(ctx context.Context) error {
	var id string
	err := p.write(ctx, "drop rebuild", func(tx nd.ExplicitTransaction) error {
		st, err := lockCheckpoint(ctx, tx)
		if err != nil || st.rebuild == "" {
			return err
		}
		id = st.rebuildID
		return exec(ctx, tx, `MATCH (c:Checkpoint {projection: $name}) SET c.rebuild = $state, c.seq = 0`,
			map[string]any{"name": Name, "state": rebuildClearing})
	})
	if err != nil || id == "" {
		return err
	}
	if err := p.clearGraph(ctx); err != nil {
		return err
	}
	return p.write(ctx, "drop rebuild", func(tx nd.ExplicitTransaction) error {
		st, err := lockCheckpoint(ctx, tx)
		if err != nil || st.rebuild != rebuildClearing || st.rebuildID != id {
			return err // another caller restarted or ended it meanwhile
		}
		return exec(ctx, tx, `MATCH (c:Checkpoint {projection: $name})
SET c.seq = 0
REMOVE c.rebuild, c.rebuild_id, c.rebuild_started_at`, map[string]any{"name": Name})
	})
}

// clearGraph deletes every relationship and node of the model except the checkpoint, in
// inner transactions of Options.ClearBatch (relationships first, so deleting a channel does
// not drag its whole PUBLISHED fan-out into one transaction).
func (p *Projection) clearGraph(ctx context.Context) error {
	n := strconv.Itoa(p.opts.ClearBatch)
	params := map[string]any{"types": strAny(Types), "labels": strAny(Labels[:len(Labels)-1])}
	err := p.autoCommit(ctx, "clear relationships", `MATCH ()-[r]->() WHERE type(r) IN $types
CALL { WITH r DELETE r } IN TRANSACTIONS OF `+n+` ROWS`, params)
	if err != nil {
		return err
	}
	return p.autoCommit(ctx, "clear nodes", `MATCH (n) WHERE any(l IN labels(n) WHERE l IN $labels)
CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF `+n+` ROWS`, params)
}

func newRebuildID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// InPlace reports that Shadow rebuilds the live graph itself (see projections.InPlace).
func (p *Projection) InPlace() bool { return true }
