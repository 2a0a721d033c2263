// Package postgres is the Postgres read model of tgflow: channels, posts, media, albums, tags,
// vision, pages, trends and per-post pipeline progress, built only from facts of the log. The
// schema and its rules are documented in SCHEMA.md.
//
// Facts are applied in batches, one transaction per batch: the checkpoint row is read FOR
// UPDATE (which also makes this the only writer of the schema until the commit), facts at or
// below it are skipped, the batch is reduced to one winner per row key, the stored state of
// those keys is read, the winners are merged into it in Go by the rules of SCHEMA.md, and the
// result is written: deletes, updates and upserts with one set-based statement per table and
// kind of change (rows sent as arrays and expanded by unnest; all statements and the new
// checkpoint pipelined in one round trip), new rows with one COPY per table when a table gets
// many (copy.go; a live batch's few are inserted by statements of the same pipeline). A new
// shadow is filled in bulk mode, its secondary indexes built by Swap (bulk.go), and the handle
// filling it keeps the state it wrote in memory instead of reading it back (cache.go). Every
// table keeps, per key, the newest fact by a fixed order, so the result does not depend on
// where the batch boundaries fall.
//
// The schema is chosen at construction (live: "tgflow"); every transaction sets search_path
// to it, so the same statements serve the live schema and a rebuild's shadow schema, and keep
// working after Swap renames the shadow to the live name.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/migrations"
	"github.com/tgflow/tgflow/projections"
)

// Name is the projection's name and the key of its row in projection_checkpoints.
const Name = "postgres"

// ShadowSuffix is appended to the live schema name to name the rebuild's shadow schema.
const ShadowSuffix = "_shadow"

// Projection writes the read model into one schema.
type Projection struct {
	pool   *pgxpool.Pool
	schema string
	// beginApply begins an Apply's transaction and configures it (apply.go), in one query.
	beginApply string
	bulk       bool // the schema is in bulk mode (an empty shadow being filled; see bulk.go)
	swapped    atomic.Bool

	// In bulk mode: the state cache (cache.go). mu serializes the Applies of this handle;
	// cache is nil while unknown, and cacheOff is set once it was dropped for good.
	mu       sync.Mutex
	cache    *stateCache
	cacheOff bool
}

var (
	_ projections.Projection = (*Projection)(nil)
	_ projections.Rebuilder  = (*Projection)(nil)
)

// New migrates schema (creating it if needed) and returns a projection writing into it. The
// pool stays the caller's: Close does not close it.
func New(ctx context.Context, pool *pgxpool.Pool, schema string) (*Projection, error) {
	if pool == nil {
		return nil, errors.New("postgres projection: nil pool")
	}
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	if len(schema)+len(ShadowSuffix) > 40 {
		return nil, fmt.Errorf("%w: %q leaves no room for the shadow suffix", migrations.ErrSchemaName, schema)
	}
	if err := migrations.Up(ctx, pool, schema); err != nil {
		return nil, backend("migrate", err)
	}
	p := &Projection{pool: pool, schema: schema}
	// The schema name is validated above ([a-z_][a-z0-9_]*): it needs no escaping inside the
	// string literal; the quoting is kept all the same.
	p.beginApply = `BEGIN; SELECT set_config('search_path', '` + strings.ReplaceAll(p.searchPath(), "'", "''") + `', true),
  set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
  set_config('plan_cache_mode', 'force_generic_plan', true)`
	// The checkpoint row exists from the start, so the first Apply can lock it FOR UPDATE.
	err := p.inTx(ctx, "init checkpoint", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, seq) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Name is "postgres".
func (p *Projection) Name() string { return Name }

// Schema is the schema this projection writes.
func (p *Projection) Schema() string { return p.schema }

// Checkpoint returns the last applied sequence.
func (p *Projection) Checkpoint(ctx context.Context) (uint64, error) {
	var seq int64
	err := p.inTx(ctx, "read checkpoint", func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT seq FROM projection_checkpoints WHERE name = $1`, Name).Scan(&seq)
	})
	return uint64(seq), err
}

// Close releases nothing: the pool belongs to the caller.
func (p *Projection) Close() error { return nil }

// searchPath is the value of search_path for this projection's transactions.
func (p *Projection) searchPath() string { return pgx.Identifier{p.schema}.Sanitize() }

// inTx runs fn in a transaction whose search_path is the projection's schema.
func (p *Projection) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	if p.swapped.Load() {
		return fmt.Errorf("postgres %s: %w", op, ErrSwapped)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return backend(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, p.searchPath()); err != nil {
		return backend(op, err)
	}
	if err := fn(tx); err != nil {
		return backend(op, err)
	}
	return backend(op, tx.Commit(ctx))
}
