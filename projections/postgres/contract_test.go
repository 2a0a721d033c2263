package postgres_test

import (
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

func TestContract(t *testing.T) {
	projectiontest.Run(t, projectiontest.Harness{
		New: func(t *testing.T) projections.Projection {
			return newProjection(t, newPool(t), "tgflow")
		},
		Expect: expectScript,
	})
}

// pgTime renders t the way the snapshot does (to_jsonb of a timestamptz in UTC).
func pgTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

func at(min int) string { return pgTime(projectiontest.T0.Add(time.Duration(min) * time.Minute)) }

func expectScript(t *testing.T, s projectiontest.Script, snap projections.Snapshot) {
	editAt := projectiontest.T0.Add(20 * time.Minute)
	a, b := int64(projectiontest.ChannelA), int64(projectiontest.ChannelB)
	p10, p11 := projectiontest.PostEdited, projectiontest.PostDeleted

	t.Run("edited text wins", func(t *testing.T) {
		r := one(t, rowsOf(t, snap, "posts"), "post 10", "channel_id", a, "message_id", p10.MessageID)
		field(t, r, "text", "Выборы перенесены: https://example.org/a #economy")
		field(t, r, "version", editAt.Unix())
		field(t, r, "edited_at", pgTime(editAt))
		field(t, r, "posted_at", at(1))
		field(t, r, "deleted_at", nil)
		media := where(rowsOf(t, snap, "post_media"), "channel_id", a, "message_id", p10.MessageID)
		if len(media) != 1 || media[0]["version"] != float64(editAt.Unix()) {
			t.Errorf("post 10 media = %v, want the photo of the edited version", media)
		}
	})

	t.Run("tags of the newest revision only", func(t *testing.T) {
		tags := where(rowsOf(t, snap, "post_tags"), "channel_id", a, "message_id", p10.MessageID)
		if len(tags) != 1 {
			t.Fatalf("post 10 tags = %v, want only the edit's", tags)
		}
		field(t, tags[0], "tag", "выборы")
		field(t, tags[0], "trigger", events.TriggerEdit)
		field(t, tags[0], "version", editAt.Unix())
		field(t, tags[0], "revision", 0)
		if st := where(rowsOf(t, snap, "post_tags"), "tag", "stale-tag"); len(st) != 0 {
			t.Errorf("stale tag applied: %v", st)
		}
		emb := one(t, rowsOf(t, snap, "post_embeddings"), "post 10 embedding", "channel_id", a, "message_id", p10.MessageID)
		field(t, emb, "version", editAt.Unix())
		field(t, emb, "dim", projectiontest.Dim)
		vis := one(t, rowsOf(t, snap, "post_vision"), "post 10 vision", "channel_id", a, "message_id", p10.MessageID)
		field(t, vis, "description", "A ballot box")
	})

	t.Run("deleted post is a tombstone", func(t *testing.T) {
		r := one(t, rowsOf(t, snap, "posts"), "post 11", "channel_id", a, "message_id", p11.MessageID)
		field(t, r, "deleted_at", at(31))
		field(t, r, "text", "Short-lived post about markets")
		if n := len(where(rowsOf(t, snap, "posts"), "deleted_at", nil)); n != len(rowsOf(t, snap, "posts"))-1 {
			t.Errorf("%d posts without tombstone, want all but one", n)
		}
	})

	t.Run("metrics, forward and reply", func(t *testing.T) {
		r := one(t, rowsOf(t, snap, "posts"), "post 20", "channel_id", b, "message_id", projectiontest.PostReplied.MessageID)
		field(t, r, "views", 500)
		field(t, r, "forwards", 7)
		field(t, r, "metrics_at", at(30))
		if re, _ := r["reactions"].(map[string]any); len(re) != 1 || re["🔥"] != float64(9) {
			t.Errorf("reactions = %v", r["reactions"])
		}
		f := one(t, rowsOf(t, snap, "posts"), "post 21", "channel_id", b, "message_id", projectiontest.PostForward.MessageID)
		field(t, f, "forward_channel_id", a)
		field(t, f, "forward_message_id", 10)
		field(t, f, "reply_to_message_id", 20)
	})

	t.Run("album with three items", func(t *testing.T) {
		al := one(t, rowsOf(t, snap, "albums"), "album", "channel_id", a, "grouped_id", projectiontest.AlbumGroupedID)
		field(t, al, "item_count", 3)
		field(t, al, "outcome", events.AlbumComplete)
		field(t, al, "summary", "Three photos of a rally")
		items := where(rowsOf(t, snap, "album_items"), "channel_id", a, "grouped_id", projectiontest.AlbumGroupedID)
		if len(items) != 3 {
			t.Fatalf("album items = %v, want 3", items)
		}
		for i, id := range projectiontest.AlbumItems {
			one(t, items, "album item", "position", i, "message_id", id)
		}
		if n := len(rowsOf(t, snap, "media_objects")); n != 4 {
			t.Errorf("%d media objects, want 4 distinct sha256", n)
		}
	})

	t.Run("pages with an error", func(t *testing.T) {
		pages := rowsOf(t, snap, "pages")
		bad := one(t, pages, "chips page", "url", "https://chips.example.com/x")
		field(t, bad, "error", "timeout after 10s")
		field(t, bad, "fetched_at", nil)
		field(t, bad, "domain", "chips.example.com")
		ok := one(t, pages, "example page", "url", "https://example.org/a")
		field(t, ok, "title", "Example A")
		field(t, ok, "error", nil)
		pp := one(t, rowsOf(t, snap, "post_pages"), "post 20 page", "channel_id", b, "message_id", projectiontest.PostReplied.MessageID)
		field(t, pp, "error", "timeout after 10s")
	})

	t.Run("trend", func(t *testing.T) {
		tr := one(t, rowsOf(t, snap, "trends"), "trend", "tag", "выборы", "window_size", "1h")
		field(t, tr, "count", 3)
		field(t, tr, "window_end", at(60))
		field(t, tr, "detected_at", at(33))
	})

	t.Run("channel merged by username", func(t *testing.T) {
		chans := rowsOf(t, snap, "channels")
		for _, r := range chans {
			if u, ok := r["username"].(string); ok && len(where(chans, "username", u)) != 1 {
				t.Errorf("username %s is on %d rows", u, len(where(chans, "username", u)))
			}
		}
		if n := len(where(chans, "id", nil)); n == len(chans) {
			t.Errorf("no channel has an id: %v", chans)
		}
		beta := one(t, chans, "beta", "username", "beta_digest")
		field(t, beta, "id", b)
		field(t, beta, "subscribed", true)
		field(t, beta, "title", "Beta Digest")
		field(t, beta, "subscribed_at", at(0))
		field(t, beta, "last_synced_at", at(35))
		field(t, beta, "sync_runs", 1)
		alpha := one(t, chans, "alpha", "id", a)
		field(t, alpha, "username", "alpha_news")
		field(t, alpha, "last_cursor", 32)
		gone := one(t, chans, "gone", "username", "gone_channel")
		field(t, gone, "id", nil)
		field(t, gone, "subscribed", false)
		field(t, gone, "last_error_code", "USERNAME_NOT_OCCUPIED")
		field(t, gone, "last_error_permanent", true)
		if temp := where(chans, "username", "temp_channel"); len(temp) == 1 {
			field(t, temp[0], "subscribed", false)
			field(t, temp[0], "unsubscribed_at", at(37))
		}
	})

	t.Run("pipeline progress", func(t *testing.T) {
		pr := one(t, rowsOf(t, snap, "pipeline_progress"), "post 10", "channel_id", a, "message_id", p10.MessageID)
		field(t, pr, "parsed_at", at(1))
		field(t, pr, "version", editAt.Unix())
		field(t, pr, "version_at", pgTime(editAt))
		field(t, pr, "vision_at", at(6))
		field(t, pr, "tagged_version", editAt.Unix())
		field(t, pr, "tagged_at", at(2)) // the tagger stamps posted_at + 1 min
		field(t, pr, "enriched_at", at(3))
		field(t, pr, "embedded_version", editAt.Unix())
		field(t, pr, "embedded_at", at(8))
		p21 := one(t, rowsOf(t, snap, "pipeline_progress"), "post 21", "channel_id", b, "message_id", projectiontest.PostForward.MessageID)
		field(t, p21, "tagged_at", at(5))
		field(t, p21, "enriched_at", nil)
		field(t, p21, "embedded_at", nil)
	})
}
