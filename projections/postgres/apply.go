package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tgflow/tgflow/projections"
)

// Apply applies the facts above the stored checkpoint in one transaction and stores the last
// sequence as the new checkpoint. See the package doc and SCHEMA.md for the rules.
func (p *Projection) Apply(ctx context.Context, facts []projections.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	if err := projections.CheckOrder(facts); err != nil {
		return fmt.Errorf("postgres apply: %w", err)
	}
	if p.swapped.Load() {
		return fmt.Errorf("postgres apply: %w", ErrSwapped)
	}
	// search_path must be set before the next statements are prepared (a pipelined batch
	// prepares all its statements before running any), so it is set with the BEGIN, in the
	// same round trip (one simple-protocol query).
	// A batch touches at most a few thousand rows of tables that grow to millions, but the
	// planner cannot see how many rows an unnest of parameters yields and picks hash or merge
	// joins that scan whole tables; index nested loops are right for every statement here.
	// The plan does not depend on the parameter values either, so the generic plan of each
	// prepared statement is reused instead of planning it again for every batch.
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: p.beginApply})
	if err != nil {
		return backend("apply: begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if p.bulk {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	// One round trip: lock and read the checkpoint, and read the stored state of every row key
	// the batch may touch (the lock keeps it stable until the commit). In bulk mode, while the
	// state cache is expected to hold (cache.go), the reads are left out.
	var cp checkpointRow
	var cpAt pgtype.Timestamptz
	var st stored
	keys := keysOf(facts)
	skipReads := p.bulk && p.cache != nil
	var reads pgx.Batch
	reads.Queue(`SELECT seq, updated_at, tableoid FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, Name).QueryRow(func(row pgx.Row) error {
		return row.Scan(&cp.seq, &cpAt, &cp.tableOID)
	})
	if !skipReads {
		queueReads(&reads, keys, &st)
	}
	if err := tx.SendBatch(ctx, &reads).Close(); err != nil {
		return backend("apply: read state", err)
	}
	cp.at = tsOf(cpAt)
	cache := p.useCache(cp)
	switch {
	case cache != nil:
		st = cache.st
	case skipReads: // the cache did not hold: read as without it
		var more pgx.Batch
		queueReads(&more, keys, &st)
		if err := tx.SendBatch(ctx, &more).Close(); err != nil {
			return backend("apply: read state", err)
		}
	}
	todo := facts
	for len(todo) > 0 && todo[0].Seq <= uint64(cp.seq) {
		todo = todo[1:]
	}
	if len(todo) == 0 {
		return nil // a redelivered batch: everything is applied already
	}

	r := reduce(todo)
	if err := applyChannels(ctx, tx, r.channels); err != nil {
		return backend("apply channels", err)
	}
	var w writes
	var after *stored
	if cache != nil {
		s := newStored()
		after = &s
	}
	if err := queueWrites(&w, r, &st, after); err != nil {
		return fmt.Errorf("postgres apply: %w", err)
	}
	next := checkpointRow{tableOID: cp.tableOID, seq: int64(todo[len(todo)-1].Seq), at: usec(time.Now())}
	w.Queue(`UPDATE projection_checkpoints SET seq = $2, updated_at = $3 WHERE name = $1`, Name, next.seq, next.at)
	if err := w.run(ctx, tx); err != nil {
		return backend(fmt.Sprintf("apply seq %d..%d", todo[0].Seq, todo[len(todo)-1].Seq), err)
	}
	if err := tx.Commit(ctx); err != nil {
		// Committed or not, the cache still describes the checkpoint it records: if the commit
		// went through, the next Apply finds another checkpoint and drops it.
		return backend("apply: commit", err)
	}
	if cache != nil {
		cache.merge(after, next)
		if cache.size() > maxCachedKeys {
			p.cache, p.cacheOff = nil, true
		}
	}
	return nil
}

// useCache returns the state cache if it holds for the checkpoint row cp, read under its lock
// (see cache.go), and nil when the stored state must be read. Called with p.mu held.
func (p *Projection) useCache(cp checkpointRow) *stateCache {
	switch {
	case !p.bulk || p.cacheOff:
		return nil
	case p.cache.matches(cp):
		return p.cache
	case cp.seq == 0:
		// Nothing applied yet: the tables are empty, the cache complete.
		p.cache = &stateCache{st: newStored(), tableOID: cp.tableOID, seq: cp.seq, at: cp.at}
		return p.cache
	default:
		// Another handle wrote this schema (or it was re-created): what it holds is unknown.
		p.cache, p.cacheOff = nil, true
		return nil
	}
}
