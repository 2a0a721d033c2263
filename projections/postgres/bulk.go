package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Bulk mode. A new shadow schema starts empty and is filled by one replay, so its secondary
// indexes (the ones that back no primary key or unique constraint, which no statement of
// Apply needs) are dropped when Shadow creates it and built once, in Swap, over the finished
// tables: building an index over a table is much cheaper than maintaining it row by row.
// Their definitions are kept in the shadow's table deferredIndexes until then, so a resumed
// shadow (another process, after a crash) stays in bulk mode and any Swap builds them. Swap
// builds them in its transaction, before the renames: the swapped-in schema has every index
// of the migrations, and the table is dropped.

// deferredIndexes holds, in a schema in bulk mode, the definitions of the indexes to build
// before it goes live.
const deferredIndexes = "projection_deferred_indexes"

// enterBulk puts the schema of p in bulk mode if it is empty (checkpoint 0) and not in bulk
// mode yet, and reports whether it is in bulk mode.
func (p *Projection) enterBulk(ctx context.Context) (bool, error) {
	var bulk bool
	err := p.inTx(ctx, "enter bulk mode", func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, Name).Scan(&seq); err != nil {
			return err
		}
		var err error
		if bulk, err = inBulk(ctx, tx, p.schema); err != nil || bulk || seq != 0 {
			return err
		}
		// Secondary indexes: not primary, not unique (ON CONFLICT needs those), not backing a
		// constraint. Their tables are empty, so nothing is lost by dropping them.
		rows, err := tx.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relnamespace = $1::regnamespace AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1`, p.schema)
		if err != nil {
			return err
		}
		type index struct{ name, def string }
		idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
			var x index
			return x, r.Scan(&x.name, &x.def)
		})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE `+deferredIndexes+` (name text PRIMARY KEY, definition text NOT NULL)`); err != nil {
			return err
		}
		for _, x := range idx {
			if _, err := tx.Exec(ctx, `INSERT INTO `+deferredIndexes+` (name, definition) VALUES ($1, $2)`, x.name, x.def); err != nil {
				return err
			}
			// x.name is the regclass text: schema-qualified and quoted as needed.
			if _, err := tx.Exec(ctx, `DROP INDEX `+x.name); err != nil {
				return err
			}
		}
		bulk = true
		return nil
	})
	return bulk, err
}

// inBulk reports whether schema is in bulk mode.
func inBulk(ctx context.Context, tx pgx.Tx, schema string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ident(schema)+"."+deferredIndexes).Scan(&ok)
	return ok, err
}

// finishBulk builds the deferred indexes of schema, if it is in bulk mode, and leaves bulk
// mode. It runs in the caller's transaction.
func finishBulk(ctx context.Context, tx pgx.Tx, schema string) error {
	bulk, err := inBulk(ctx, tx, schema)
	if err != nil || !bulk {
		return err
	}
	// Simple protocol: no prepared statement naming this schema outlives the rename.
	tbl := ident(schema) + "." + deferredIndexes
	rows, err := tx.Query(ctx, `SELECT definition FROM `+tbl+` ORDER BY name`, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, d := range defs {
		if _, err := tx.Exec(ctx, d, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("build deferred index: %w", err)
		}
	}
	_, err = tx.Exec(ctx, `DROP TABLE `+tbl, pgx.QueryExecModeSimpleProtocol)
	return err
}
