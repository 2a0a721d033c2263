package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/projections"
)

// ShadowSchema is the schema a rebuild of this projection fills.
func (p *Projection) ShadowSchema() string { return p.schema + ShadowSuffix }

// Shadow returns a projection over the shadow schema <schema>_shadow, created and migrated
// if it does not exist. An existing shadow is kept with its checkpoint, so an interrupted
// rebuild resumes where it stopped. An empty shadow is put in bulk mode (see bulk.go): its
// secondary indexes are built by Swap.
func (p *Projection) Shadow(ctx context.Context) (projections.Projection, error) {
	sh, err := New(ctx, p.pool, p.ShadowSchema())
	if err != nil {
		return nil, err
	}
	if sh.bulk, err = sh.enterBulk(ctx); err != nil {
		return nil, err
	}
	return sh, nil
}

// Swap makes shadow the live schema in one transaction: it builds the shadow's deferred
// indexes if it was filled in bulk mode, then the live schema is renamed to
// <schema>_old_<n> (n one more than any existing one) and the shadow to <schema>. Readers
// that name <schema>.posts see the old tables until the commit and the new ones after it.
// The caller pauses the live projector first; afterwards this projection (and any other
// handle on <schema>) writes the swapped-in tables, from the shadow's checkpoint. The shadow
// handle is unusable after a successful Swap.
func (p *Projection) Swap(ctx context.Context, shadow projections.Projection) error {
	sh, ok := shadow.(*Projection)
	if !ok || sh.schema != p.ShadowSchema() || sh == p {
		return fmt.Errorf("postgres swap: %w: %T", ErrNotShadow, shadow)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return backend("swap", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit

	// The live projector is paused, but a forgotten one must not write during the renames:
	// take its checkpoint row lock, and the shadow's.
	liveExists, liveSeq, err := lockCheckpoint(ctx, tx, p.schema)
	if err != nil {
		return backend("swap", err)
	}
	shadowExists, shadowSeq, err := lockCheckpoint(ctx, tx, sh.schema)
	if err != nil {
		return backend("swap", err)
	}
	if !shadowExists {
		return fmt.Errorf("postgres swap: shadow schema %s does not exist", sh.schema)
	}
	if liveExists && shadowSeq < liveSeq {
		return fmt.Errorf("postgres swap: %w: shadow at seq %d, live at %d", ErrShadowBehind, shadowSeq, liveSeq)
	}
	if err := finishBulk(ctx, tx, sh.schema); err != nil {
		return backend("swap: build deferred indexes", err)
	}
	if liveExists {
		old, err := nextOldSchema(ctx, tx, p.schema)
		if err != nil {
			return backend("swap", err)
		}
		if _, err := tx.Exec(ctx, `ALTER SCHEMA `+ident(p.schema)+` RENAME TO `+ident(old)); err != nil {
			return backend("swap", err)
		}
	}
	if _, err := tx.Exec(ctx, `ALTER SCHEMA `+ident(sh.schema)+` RENAME TO `+ident(p.schema)); err != nil {
		return backend("swap", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return backend("swap: commit", err)
	}
	sh.swapped.Store(true)
	return nil
}

// DropShadow drops the shadow schema and everything in it.
func (p *Projection) DropShadow(ctx context.Context) error {
	_, err := p.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+ident(p.ShadowSchema())+` CASCADE`)
	return backend("drop shadow", err)
}

// OldSchemas lists the schemas earlier swaps moved the live schema to, oldest first; an
// operator drops them (DROP SCHEMA … CASCADE) once the new live schema is trusted.
func (p *Projection) OldSchemas(ctx context.Context) ([]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname`, p.schema+"_old_")
	if err != nil {
		return nil, backend("list old schemas", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, backend("list old schemas", err)
	}
	var out []string
	for _, n := range names {
		if _, ok := oldNumber(p.schema, n); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

func lockCheckpoint(ctx context.Context, tx pgx.Tx, schema string) (exists bool, seq int64, err error) {
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil || !exists {
		return false, 0, err
	}
	// Simple protocol: no prepared statement naming this schema outlives the rename.
	err = tx.QueryRow(ctx, `SELECT seq FROM `+ident(schema)+`.projection_checkpoints WHERE name = $1 FOR UPDATE`,
		pgx.QueryExecModeSimpleProtocol, Name).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, 0, nil
	}
	return true, seq, err
}

func nextOldSchema(ctx context.Context, tx pgx.Tx, schema string) (string, error) {
	rows, err := tx.Query(ctx, `SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`, schema+"_old_")
	if err != nil {
		return "", err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	n := 0
	for _, name := range names {
		if k, ok := oldNumber(schema, name); ok {
			n = max(n, k)
		}
	}
	return schema + "_old_" + strconv.Itoa(n+1), nil
}

func oldNumber(schema, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, schema+"_old_")
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	return k, err == nil && k > 0
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }
