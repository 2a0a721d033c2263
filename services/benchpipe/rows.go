package benchpipe

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/postgres"
)

// rowWatcher polls the Postgres read model for the posts the tracker waits for: a post is
// done when its pipeline_progress row says it is embedded. Each poll asks for the oldest
// window of unfinished posts by primary key, so a poll costs the window, not the table.
type rowWatcher struct {
	pool       *pgxpool.Pool
	query      string
	checkpoint string // the projection's checkpoint: rows change only when it moves
	tr         *tracker
	ready      chan struct{} // closed once a poll succeeded: the table exists
}

// pollEvery is the polling period: it bounds how much a latency figure may overstate.
const pollEvery = 5 * time.Millisecond

// window is how many of the oldest unfinished posts one poll asks about. Posts finish
// roughly in publish order; a post finishing ahead of the window is seen once the window
// reaches it (its latency is then overstated, never understated). The first version asked
// about up to 4000 posts every poll: encoding those arrays was 5 % of the run's CPU.
const window = 256

// A poll first reads the projection's checkpoint (one row) and asks about the window only
// when it moved since the last window, or the last window found posts done (the next one
// holds others): a post's row changes only in a commit that moves the checkpoint. Asking
// about the window every poll was 3–5 % of the pipeline run's CPU, and load on Postgres.

func newRowWatcher(ctx context.Context, env map[string]string, tr *tracker) (*rowWatcher, error) {
	schema := env["TGFLOW_POSTGRES_SCHEMA"]
	if schema == "" {
		schema = "tgflow"
	}
	pool, err := pgxpool.New(ctx, env["TGFLOW_POSTGRES_URL"])
	if err != nil {
		// pgx errors can echo the URL: say only which variable is wrong.
		return nil, fmt.Errorf("%w: TGFLOW_POSTGRES_URL cannot be parsed as a Postgres URL", ErrBench)
	}
	q := `SELECT p.channel_id, p.message_id FROM ` + pgx.Identifier{schema, "pipeline_progress"}.Sanitize() + ` p
		JOIN unnest($1::bigint[], $2::bigint[]) AS k(c, m) ON p.channel_id = k.c AND p.message_id = k.m
		WHERE p.embedded_version IS NOT NULL`
	cp := `SELECT seq FROM ` + pgx.Identifier{schema, "projection_checkpoints"}.Sanitize() + ` WHERE name = ` + "'" + postgres.Name + "'"
	return &rowWatcher{pool: pool, query: q, checkpoint: cp, tr: tr, ready: make(chan struct{})}, nil
}

func (w *rowWatcher) close() { w.pool.Close() }

// run polls until ctx ends. The table exists once proj-postgres has migrated the schema:
// until then a poll fails and is retried.
func (w *rowWatcher) run(ctx context.Context) error {
	var chs, msgs []int64
	next := 0 // w.tr.order[:next] are done
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	failures := 0
	var seen int64 = -1 // the checkpoint of the last window asked about
	more := true        // the last window found posts done
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		chs, msgs = chs[:0], msgs[:0]
		w.tr.mu.Lock()
		for next < len(w.tr.order) {
			if _, done := w.tr.done[w.tr.order[next]]; !done {
				break
			}
			next++
		}
		for _, k := range w.tr.order[next:] {
			if len(chs) == window {
				break
			}
			if _, done := w.tr.done[k]; !done {
				chs, msgs = append(chs, int64(k.ch)), append(msgs, k.msg)
			}
		}
		w.tr.mu.Unlock()
		if len(chs) == 0 {
			select {
			case <-w.ready:
				continue
			default:
				chs, msgs = append(chs, 0), append(msgs, 0) // no such post: checks the table
			}
		}
		var cp int64
		err := w.pool.QueryRow(ctx, w.checkpoint).Scan(&cp)
		if err == nil && (cp != seen || more) {
			var rows pgx.Rows
			rows, err = w.pool.Query(ctx, w.query, chs, msgs)
			if err == nil {
				now := time.Now()
				var c, m int64
				var n int
				_, err = pgx.ForEachRow(rows, []any{&c, &m}, func() error {
					w.tr.finished(key{events.ChannelID(c), m}, now)
					n++
					return nil
				})
				seen, more = cp, n > 0
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Before proj-postgres has created its schema the table is missing: retried,
			// but not forever.
			if failures++; failures > 2000 {
				return fmt.Errorf("poll the read model: %w (and %d failures before)", err, failures)
			}
			continue
		}
		failures = 0
		select {
		case <-w.ready:
		default:
			close(w.ready)
		}
	}
}
