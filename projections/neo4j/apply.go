package neo4j

import (
	"context"
	"fmt"
	"time"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// Rebuild states kept on the checkpoint node (property rebuild) while a rebuild runs.
const (
	rebuildClearing = "clearing"
	rebuildFilling  = "filling"
)

// cyLockCheckpoint takes the write lock of the checkpoint node first thing in a transaction:
// every writer of the graph (Apply, Shadow, Swap, DropShadow) goes through it, so they are
// serialized. Setting and removing a property takes the lock without changing the node (a
// REMOVE of a missing property takes none, and SET c.seq = c.seq would write back the value
// read before the lock). The checkpoint is read by a second statement, after the lock, so it
// is the value committed last.
const (
	cyLockCheckpoint = `MERGE (c:Checkpoint {projection: $name})
ON CREATE SET c.seq = 0
SET c.lock = true
REMOVE c.lock`
	cyReadCheckpoint = `MATCH (c:Checkpoint {projection: $name})
RETURN c.seq, c.rebuild, c.rebuild_id, c.swapped_id`
)

type checkpointState struct {
	seq       uint64
	rebuild   string
	rebuildID string
	swappedID string
}

func lockCheckpoint(ctx context.Context, tx nd.ExplicitTransaction) (checkpointState, error) {
	var st checkpointState
	params := map[string]any{"name": Name}
	if err := exec(ctx, tx, cyLockCheckpoint, params); err != nil {
		return st, fmt.Errorf("lock checkpoint: %w", err)
	}
	err := query(ctx, tx, cyReadCheckpoint, params, func(r *nd.Record) error {
		seq, _ := r.Values[0].(int64)
		st.seq = uint64(seq)
		st.rebuild, _ = r.Values[1].(string)
		st.rebuildID, _ = r.Values[2].(string)
		st.swappedID, _ = r.Values[3].(string)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("lock checkpoint: %w", err)
	}
	return st, nil
}

// checkWriter refuses the live projection while a rebuild refills the graph, and a shadow
// whose rebuild is over (swapped or dropped) or not its own.
func (p *Projection) checkWriter(st checkpointState) error {
	if p.rebuild == "" {
		if st.rebuild != "" {
			return fmt.Errorf("%w: %w (since the rebuild started; it ends with Swap or DropShadow)", projections.ErrBackend, ErrRebuilding)
		}
		return nil
	}
	if st.rebuild != rebuildFilling || st.rebuildID != p.rebuild {
		return fmt.Errorf("%w: rebuild %s is not running (state %q)", ErrNotShadow, p.rebuild, st.rebuild)
	}
	return nil
}

// Apply applies the facts above the checkpoint in one transaction and stores the last
// sequence as the new checkpoint in it.
func (p *Projection) Apply(ctx context.Context, facts []projections.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	if err := projections.CheckOrder(facts); err != nil {
		return fmt.Errorf("neo4j apply: %w", err)
	}
	return p.write(ctx, "apply", func(tx nd.ExplicitTransaction) error {
		st, err := lockCheckpoint(ctx, tx)
		if err != nil {
			return err
		}
		if err := p.checkWriter(st); err != nil {
			return err
		}
		last := facts[len(facts)-1].Seq
		if last <= st.seq {
			return nil // a redelivery of applied facts
		}
		todo := facts
		for len(todo) > 0 && todo[0].Seq <= st.seq {
			todo = todo[1:]
		}
		b := newBatch()
		stored, err := readPosts(ctx, tx, postKeys(todo))
		if err != nil {
			return err
		}
		b.fold(todo, stored)
		pages, err := readPages(ctx, tx, b.pageOrder)
		if err != nil {
			return err
		}
		images, err := readImages(ctx, tx, b.imageOrder)
		if err != nil {
			return err
		}
		if err := applyChannels(ctx, tx, b.channels); err != nil {
			return err
		}
		if err := p.writePosts(ctx, tx, b, pages, images); err != nil {
			return fmt.Errorf("write batch at seq %d: %w", todo[0].Seq, err)
		}
		return exec(ctx, tx, `MATCH (c:Checkpoint {projection: $name}) SET c.seq = $seq`, map[string]any{"name": Name, "seq": int64(last)})
	})
}

const cyReadPosts = `UNWIND $keys AS k
MATCH (p:Post {key: k})
RETURN k, p.stub, p.deleted_at IS NOT NULL, p.version, p.metrics_at,
  p.tags_version, p.tags_revision, p.links_version, p.links_revision,
  p.embedding_version, p.embedding_revision, p.vision_version, p.vision_revision`

// readPosts reads the stored state of the posts that exist among keys.
func readPosts(ctx context.Context, tx nd.ExplicitTransaction, keys []string) (map[string]postState, error) {
	out := make(map[string]postState, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	err := query(ctx, tx, cyReadPosts, map[string]any{"keys": strAny(keys)}, func(r *nd.Record) error {
		v := r.Values
		key, _ := v[0].(string)
		stub, _ := v[1].(bool)
		deleted, _ := v[2].(bool)
		st := postState{exists: true, stub: stub, deleted: deleted}
		if n, ok := v[3].(int64); ok {
			st.version = &n
		}
		st.metricsAt, _ = v[4].(time.Time)
		st.tags = revOf(v[5], v[6])
		st.links = revOf(v[7], v[8])
		st.emb = revOf(v[9], v[10])
		st.vis = revOf(v[11], v[12])
		out[key] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read posts: %w", err)
	}
	return out, nil
}

func revOf(version, revision any) *events.Rev {
	v, ok := version.(int64)
	if !ok {
		return nil
	}
	r, _ := revision.(int64)
	return &events.Rev{Version: v, Revision: int(r)}
}

const cyReadPages = `UNWIND $urls AS u
MATCH (pg:Page {url: u})
RETURN u, pg.observed_at, pg.domain`

// readPages reads the stored state of the pages that exist among urls.
func readPages(ctx context.Context, tx nd.ExplicitTransaction, urls []string) (map[string]pageState, error) {
	out := make(map[string]pageState, len(urls))
	if len(urls) == 0 {
		return out, nil
	}
	err := query(ctx, tx, cyReadPages, map[string]any{"urls": strAny(urls)}, func(r *nd.Record) error {
		u, _ := r.Values[0].(string)
		at, _ := r.Values[1].(time.Time)
		dom, _ := r.Values[2].(string)
		out[u] = pageState{observedAt: at, domain: dom}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pages: %w", err)
	}
	return out, nil
}

const cyReadImages = `UNWIND $shas AS s
MATCH (i:Image {sha256: s})
RETURN s, i.analyzed_at`

// readImages reads the analysis time of the images that exist among shas (the zero time for
// an image known only as a near-duplicate target).
func readImages(ctx context.Context, tx nd.ExplicitTransaction, shas []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(shas))
	if len(shas) == 0 {
		return out, nil
	}
	err := query(ctx, tx, cyReadImages, map[string]any{"shas": strAny(shas)}, func(r *nd.Record) error {
		s, _ := r.Values[0].(string)
		at, _ := r.Values[1].(time.Time)
		out[s] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read images: %w", err)
	}
	return out, nil
}
