package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/postgres"
)

// PGStore is the Store over the Postgres read model (projections/postgres read functions).
type PGStore struct {
	Pool   *pgxpool.Pool
	Schema string
}

var _ Store = PGStore{}

// ReadOnlyPool opens a pool whose every session is read-only (default_transaction_read_only):
// whatever the role may do, a statement of the API that tried to write would fail with
// "cannot execute … in a read-only transaction". Give the API a role that can only read
// as well (README: "A read-only role for the API").
func ReadOnlyPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("api: postgres url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "tgflow-api"
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("api: postgres: %w", err)
	}
	return pool, nil
}

func notFound(err error) error {
	if errors.Is(err, postgres.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// Post maps postgres.Post.
func (s PGStore) Post(ctx context.Context, ch events.ChannelID, msg int64) (Post, error) {
	v, err := postgres.Post(ctx, s.Pool, s.Schema, ch, msg)
	if err != nil {
		return Post{}, notFound(err)
	}
	if v.Version == nil { // known only from a deletion or a metrics refresh
		return Post{}, fmt.Errorf("%w: post %s has no content in the read model", ErrNotFound, events.PostKey(ch, msg))
	}
	p := Post{
		ChannelID: v.ChannelID, ChannelTitle: v.ChannelTitle, ChannelUsername: v.ChannelUsername, MessageID: v.MessageID,
		Date: v.PostedAt.UTC(), EditedAt: tp(v.EditedAt), DeletedAt: tp(v.DeletedAt), Version: *v.Version,
		Text: v.Text, Links: v.Links, Views: v.Views, Forwards: v.Forwards, Topics: v.Topics,
	}
	for _, t := range v.Tags {
		p.Tags = append(p.Tags, Tag{Name: t.Tag, Score: t.Score})
	}
	for _, m := range v.Media {
		p.Media = append(p.Media, Media{Kind: m.Kind, MIME: m.MIME, Size: m.Size, SHA256: m.SHA256, Skipped: m.Skipped})
	}
	for _, pg := range v.Pages {
		p.Pages = append(p.Pages, Page{URL: pg.URL, Domain: pg.Domain, Title: pg.Title, Status: pg.Status, Error: pg.Error})
	}
	for _, vi := range v.Vision {
		item := Vision{Description: vi.Description, OCRText: vi.OCRText, Labels: vi.Labels, PHash: vi.PHash, Error: vi.Error}
		if vi.DupChannelID != 0 {
			item.NearDuplicateOf = events.PostKey(events.ChannelID(vi.DupChannelID), vi.DupMessageID)
		}
		p.Vision = append(p.Vision, item)
	}
	if a := v.Album; a != nil {
		al := &Album{GroupedID: a.GroupedID, Caption: a.Caption, Outcome: a.Outcome, Summary: a.Summary}
		for _, it := range a.Items {
			al.MessageIDs = append(al.MessageIDs, it.MessageID)
		}
		p.Album = al
	}
	if e := v.Embedding; e != nil {
		p.Embedding = &Embedding{Provider: e.Provider, Model: e.Model, Dim: e.Dim}
	}
	return p, nil
}

// ChannelID resolves a username with the channels table.
func (s PGStore) ChannelID(ctx context.Context, username string) (events.ChannelID, error) {
	var id int64
	err := s.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT id FROM %s.channels WHERE lower(username) = lower($1) AND id IS NOT NULL`,
		pgx.Identifier{s.Schema}.Sanitize()), username).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: channel @%s", ErrNotFound, username)
	}
	if err != nil {
		return 0, fmt.Errorf("resolve @%s: %w", username, err)
	}
	return events.ChannelID(id), nil
}

// Channels maps postgres.Channels, with the posts of each channel whose current version
// is not embedded yet (the pipeline's lag on it; pipeline_progress).
func (s PGStore) Channels(ctx context.Context) ([]Channel, error) {
	chs, err := postgres.Channels(ctx, s.Pool, s.Schema)
	if err != nil {
		return nil, err
	}
	rows, err := s.Pool.Query(ctx, fmt.Sprintf(`SELECT g.channel_id, count(*) FROM %[1]s.pipeline_progress g
JOIN %[1]s.posts p ON p.channel_id = g.channel_id AND p.message_id = g.message_id
WHERE p.deleted_at IS NULL AND p.version IS NOT NULL AND g.embedded_version IS DISTINCT FROM p.version
GROUP BY g.channel_id`, pgx.Identifier{s.Schema}.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("pipeline lag per channel: %w", err)
	}
	behind := map[events.ChannelID]int64{}
	var ch, n int64
	if _, err := pgx.ForEachRow(rows, []any{&ch, &n}, func() error {
		behind[events.ChannelID(ch)] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("pipeline lag per channel: %w", err)
	}
	out := make([]Channel, len(chs))
	for i, c := range chs {
		out[i] = Channel{ID: c.ID, Username: c.Username, Title: c.Title, Subscribed: c.Subscribed, Posts: c.Posts,
			LastSyncedAt: tp(c.LastSyncedAt), LastError: c.LastError, LastErrorAt: tp(c.LastErrorAt), Failing: c.Failing,
			RetryAt: tp(c.RetryAt), Behind: behind[c.ID]}
	}
	return out, nil
}

// Trends maps postgres.Trends.
func (s PGStore) Trends(ctx context.Context, q TrendQuery) ([]Trend, error) {
	ts, err := postgres.Trends(ctx, s.Pool, s.Schema, postgres.TrendQuery{Since: q.Since, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]Trend, len(ts))
	for i, t := range ts {
		chs := make([]events.ChannelID, len(t.Channels))
		for j, c := range t.Channels {
			chs[j] = events.ChannelID(c)
		}
		out[i] = Trend{Tag: t.Tag, Window: t.WindowSize, WindowStart: t.WindowStart.UTC(), WindowEnd: t.WindowEnd.UTC(),
			Count: t.Count, Score: t.Score, Channels: chs, Posts: t.Posts}
	}
	return out, nil
}

// Tags maps postgres.Tags.
func (s PGStore) Tags(ctx context.Context, q TagQuery) ([]TagCount, error) {
	tags, err := postgres.Tags(ctx, s.Pool, s.Schema, postgres.TagQuery{Since: q.Since, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]TagCount, len(tags))
	for i, t := range tags {
		out[i] = TagCount{Tag: t.Tag, Posts: t.Posts}
	}
	return out, nil
}

// Ping checks the pool answers.
func (s PGStore) Ping(ctx context.Context) error { return s.Pool.Ping(ctx) }
