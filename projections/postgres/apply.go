package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/projections"
)

// Apply applies the facts above the stored checkpoint in one transaction and stores the last
// sequence as the new checkpoint. See the package doc and SCHEMA.md for the rules.
func (p *Projection) Apply(ctx context.Context, facts []projections.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	for i := 1; i < len(facts); i++ {
		if facts[i].Seq <= facts[i-1].Seq {
			return fmt.Errorf("postgres apply: facts not in ascending order: seq %d after %d", facts[i].Seq, facts[i-1].Seq)
		}
	}
	if p.swapped.Load() {
		return fmt.Errorf("postgres apply: %w", ErrSwapped)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return backend("apply", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit

	// search_path must be set before the next statements are prepared (a pipelined batch
	// prepares all its statements before running any), so it is a round trip of its own.
	// A batch touches at most a few thousand rows of tables that grow to millions, but the
	// planner cannot see how many rows an unnest of parameters yields and picks hash or merge
	// joins that scan whole tables; index nested loops are right for every statement here.
	// The plan does not depend on the parameter values either, so the generic plan of each
	// prepared statement is reused instead of planning it again for every batch.
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true), set_config('enable_hashjoin', 'off', true),
		set_config('enable_mergejoin', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`, p.searchPath()); err != nil {
		return backend("apply: configure transaction", err)
	}
	// One round trip: lock and read the checkpoint, and read the stored state of every row key
	// the batch may touch (the lock keeps it stable until the commit).
	var cp int64
	var st stored
	var reads pgx.Batch
	reads.Queue(`SELECT seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, Name).QueryRow(func(row pgx.Row) error {
		return row.Scan(&cp)
	})
	queueReads(&reads, keysOf(facts), &st)
	if err := tx.SendBatch(ctx, &reads).Close(); err != nil {
		return backend("apply: read state", err)
	}
	todo := facts
	for len(todo) > 0 && todo[0].Seq <= uint64(cp) {
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
	if err := queueWrites(&w, r, &st); err != nil {
		return fmt.Errorf("postgres apply: %w", err)
	}
	w.Queue(`UPDATE projection_checkpoints SET seq = $2, updated_at = $3 WHERE name = $1`,
		Name, int64(todo[len(todo)-1].Seq), time.Now().UTC())
	if err := w.run(ctx, tx); err != nil {
		return backend(fmt.Sprintf("apply seq %d..%d", todo[0].Seq, todo[len(todo)-1].Seq), err)
	}
	return backend("apply: commit", tx.Commit(ctx))
}
