package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// applyChannels applies channel facts one by one, in log order. They are few (one per
// subscription change or ingest run, not per post) and merging a channel known by username
// into the same channel known by id is a read-modify-write, so they are not reduced to sets.
func applyChannels(ctx context.Context, tx pgx.Tx, facts []projections.Fact) error {
	for _, f := range facts {
		var err error
		switch p := f.Event.Data.(type) {
		case *events.ChannelSubscribed:
			err = updateChannel(ctx, tx, p.ChannelID, p.Username,
				`subscribed = true, subscribed_at = $2, backfill_messages = $3, backfill_days = $4`,
				p.At.UTC(), optInt4(p.Backfill.Messages), optInt4(p.Backfill.Days))
		case *events.ChannelUnsubscribed:
			err = updateChannel(ctx, tx, p.ChannelID, p.Username,
				`subscribed = false, unsubscribed_at = $2`, p.At.UTC())
		case *events.ChannelSynced:
			skipped, jerr := json.Marshal(p.Skipped)
			if jerr != nil {
				return jerr
			}
			if p.Skipped == nil {
				skipped = []byte("{}")
			}
			err = updateChannel(ctx, tx, p.ChannelID, p.Username,
				`title = COALESCE($2, title), sync_runs = sync_runs + 1, last_sync_started_at = $3, last_synced_at = $4,
				 last_sync_backfill = $5, last_cursor = $6, last_fetched = $7, last_new = $8, last_edited = $9,
				 last_deleted = $10, last_media_stored = $11, last_skipped = $12::jsonb`,
				optText(p.Title), p.StartedAt.UTC(), p.FinishedAt.UTC(), p.Backfill, p.Cursor, p.Fetched, p.New,
				p.Edited, p.Deleted, p.MediaStored, string(skipped))
		case *events.ChannelFailed:
			err = updateChannel(ctx, tx, p.ChannelID, p.Username,
				`last_error_code = $2, last_error = $3, last_error_at = $4, last_error_permanent = $5, retry_at = $6`,
				p.Code, optText(p.Reason), p.At.UTC(), p.Permanent, optTS(p.RetryAt.UTC()))
		}
		if err != nil {
			return fmt.Errorf("channel fact seq %d: %w", f.Seq, err)
		}
	}
	return nil
}

// updateChannel makes sure the channel row named by id and/or username exists, merging a row
// known only by username into the row of id when a fact names both, then applies set (whose
// parameters start at $2) to it.
func updateChannel(ctx context.Context, tx pgx.Tx, id events.ChannelID, username, set string, args ...any) error {
	where, ident, err := locateChannel(ctx, tx, id, username)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE channels SET `+set+` WHERE `+where, append([]any{ident}, args...)...)
	return err
}

func locateChannel(ctx context.Context, tx pgx.Tx, id events.ChannelID, username string) (where string, ident any, err error) {
	if !id.Valid() {
		_, err = tx.Exec(ctx, `INSERT INTO channels (username) VALUES ($1) ON CONFLICT ((lower(username))) DO NOTHING`, username)
		return `lower(username) = lower($1)`, username, err
	}
	if username == "" {
		_, err = tx.Exec(ctx, `INSERT INTO channels (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, int64(id))
		return `id = $1`, int64(id), err
	}
	var holder pgtype.Int8
	err = tx.QueryRow(ctx, `SELECT id FROM channels WHERE lower(username) = lower($1)`, username).Scan(&holder)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return "", nil, err
	case !holder.Valid:
		// Known so far only by username: that row is this channel. Merge it into the row of
		// the id if there is one, else give it the id.
		if err := mergeUsernameRow(ctx, tx, int64(id), username); err != nil {
			return "", nil, err
		}
	case holder.Int64 != int64(id):
		// The username moved to another channel; the newer fact wins it.
		if _, err := tx.Exec(ctx, `UPDATE channels SET username = NULL WHERE id = $1`, holder.Int64); err != nil {
			return "", nil, err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO channels (id, username) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username`, int64(id), username)
	return `id = $1`, int64(id), err
}

// mergeUsernameRow folds the row known only by username into the row of id, or gives it the
// id when there is no such row. The subscription state of the row that changed it last wins,
// and so does the later error; sync state only exists on rows with an id.
func mergeUsernameRow(ctx context.Context, tx pgx.Tx, id int64, username string) error {
	tag, err := tx.Exec(ctx, `UPDATE channels i SET
  subscribed        = CASE WHEN s.newer THEN u.subscribed ELSE i.subscribed END,
  subscribed_at     = CASE WHEN s.newer THEN u.subscribed_at ELSE i.subscribed_at END,
  unsubscribed_at   = CASE WHEN s.newer THEN u.unsubscribed_at ELSE i.unsubscribed_at END,
  backfill_messages = CASE WHEN s.newer THEN u.backfill_messages ELSE i.backfill_messages END,
  backfill_days     = CASE WHEN s.newer THEN u.backfill_days ELSE i.backfill_days END,
  last_error_code      = CASE WHEN s.err_newer THEN u.last_error_code ELSE i.last_error_code END,
  last_error           = CASE WHEN s.err_newer THEN u.last_error ELSE i.last_error END,
  last_error_at        = CASE WHEN s.err_newer THEN u.last_error_at ELSE i.last_error_at END,
  last_error_permanent = CASE WHEN s.err_newer THEN u.last_error_permanent ELSE i.last_error_permanent END,
  retry_at             = CASE WHEN s.err_newer THEN u.retry_at ELSE i.retry_at END,
  title = COALESCE(i.title, u.title)
FROM channels u, channels i0,
  LATERAL (SELECT
    COALESCE(GREATEST(u.subscribed_at, u.unsubscribed_at) > COALESCE(GREATEST(i0.subscribed_at, i0.unsubscribed_at), '-infinity'), false) AS newer,
    COALESCE(u.last_error_at > COALESCE(i0.last_error_at, '-infinity'), false) AS err_newer) s
WHERE i.id = $1 AND i0.id = $1 AND lower(u.username) = lower($2) AND u.id IS NULL`, id, username)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		_, err = tx.Exec(ctx, `DELETE FROM channels WHERE lower(username) = lower($1) AND id IS NULL`, username)
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE channels SET id = $1 WHERE lower(username) = lower($2) AND id IS NULL`, id, username)
	return err
}
