package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/projections"
)

// snapshotTables are the tables of the read model rendered by Snapshot, with the columns
// left out of it. projection_checkpoints is left out whole: it records how far the projector
// got, not content, and its updated_at is wall-clock time.
var snapshotTables = []struct {
	name    string
	exclude []string
}{
	{name: "channels"},
	{name: "posts"},
	{name: "post_media"},
	{name: "media_objects"},
	{name: "albums"},
	{name: "album_items"},
	{name: "post_tags"},
	{name: "post_topics"},
	{name: "post_vision"},
	{name: "pages"},
	{name: "post_pages"},
	{name: "post_embeddings"},
	{name: "trends"},
	{name: "pipeline_progress"},
	{name: "post_search"},
}

// Snapshot renders every content table: one section per table, one line per row, the row as
// canonical JSON (jsonb sorts keys; timestamps in UTC).
func (p *Projection) Snapshot(ctx context.Context) (projections.Snapshot, error) {
	snap := projections.Snapshot{}
	err := p.inTx(ctx, "snapshot", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('TimeZone', 'UTC', true)`); err != nil {
			return err
		}
		for _, t := range snapshotTables {
			lines := []string{}
			q := fmt.Sprintf(`SELECT (to_jsonb(x) - $1::text[])::text FROM %s x`, pgx.Identifier{t.name}.Sanitize())
			rows, err := tx.Query(ctx, q, append([]string{}, t.exclude...))
			if err != nil {
				return err
			}
			for rows.Next() {
				var l string
				if err := rows.Scan(&l); err != nil {
					rows.Close()
					return err
				}
				lines = append(lines, l)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			snap[t.name] = lines
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap.Sort(), nil
}
