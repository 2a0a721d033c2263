package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

var sprintf = fmt.Sprintf

func facts(evs ...events.Event) []projections.Fact {
	out := make([]projections.Fact, len(evs))
	for i, e := range evs {
		out[i] = projections.Fact{Seq: uint64(i + 1), Event: e}
	}
	return out
}

func tmin(m int) time.Time { return projectiontest.T0.Add(time.Duration(m) * time.Minute) }

func parsed(ref events.PostRef, text string, edit int64, m int) events.Event {
	p := &events.PostParsed{Post: events.Post{PostRef: ref, Date: tmin(0), EditDate: edit, Text: text, Views: int64(m)}}
	return events.New(events.ProducerIngest, p, tmin(m), text)
}

// checkBatchIndependent applies fs in batches of several sizes and expects one snapshot.
func checkBatchIndependent(t *testing.T, pool *pgxpool.Pool, fs []projections.Fact) projections.Snapshot {
	t.Helper()
	var want projections.Snapshot
	for _, size := range []int{1, 2, 3, len(fs)} {
		p := newProjection(t, pool, sprintf("b%d", size))
		apply(t, p, fs, size)
		got := snapshot(t, p)
		if want == nil {
			want = got
			continue
		}
		assertSame(t, want, got)
	}
	return want
}

func TestTombstones(t *testing.T) {
	pool := newPool(t)
	ref := events.PostRef{ChannelID: 42, MessageID: 7}
	ghost := events.PostRef{ChannelID: 42, MessageID: 8}
	fs := facts(
		parsed(ref, "first", 0, 1),
		events.New(events.ProducerIngest, &events.PostDeleted{PostRef: ref, DeletedAt: tmin(5)}, tmin(5)),
		// A newer version seen after the deletion updates the content; the tombstone stays.
		parsed(ref, "re-imported", tmin(3).Unix(), 6),
		// A stale version is ignored entirely.
		parsed(ref, "older", 0, 0),
		// A deletion of a post never seen leaves a content-less tombstone that a later
		// parsed fact fills without lifting it.
		events.New(events.ProducerIngest, &events.PostDeleted{PostRef: ghost, DeletedAt: tmin(9)}, tmin(9)),
		parsed(ghost, "ghost", 0, 10),
	)
	snap := checkBatchIndependent(t, pool, fs)
	posts := rowsOf(t, snap, "posts")
	r := one(t, posts, "post 7", "message_id", 7)
	field(t, r, "deleted_at", pgTime(tmin(5)))
	field(t, r, "text", "re-imported")
	g := one(t, posts, "post 8", "message_id", 8)
	field(t, g, "deleted_at", pgTime(tmin(9)))
	field(t, g, "text", "ghost")
}

func TestEditedVersionOrder(t *testing.T) {
	pool := newPool(t)
	ref := events.PostRef{ChannelID: 42, MessageID: 7}
	v1, v2 := tmin(10).Unix(), tmin(20).Unix()
	edited := func(text string, v int64, m int) events.Event {
		return events.New(events.ProducerIngest, &events.PostEdited{Post: events.Post{PostRef: ref, Date: tmin(0), EditDate: v, Text: text}}, tmin(m), text)
	}
	tagged := func(v int64, rev int, tag string, m int) events.Event {
		return events.New(events.ProducerTagger, &events.PostTagged{PostRef: ref, Rev: events.Rev{Version: v, Revision: rev}, Trigger: events.TriggerEdit,
			Tags: []events.Tag{{Name: tag}}, PostedAt: tmin(0), Provider: "keyword"}, tmin(m), tag)
	}
	embedded := func(v int64, rev int, tag string, m int) events.Event {
		return events.New(events.ProducerEmbedder, &events.PostEmbedded{PostRef: ref, Rev: events.Rev{Version: v, Revision: rev}, Vector: []float32{1},
			Provider: "hashing", Topics: []string{tag + "-topic"}, TopicsSource: events.TopicsFromEmbedding + "hashing-test"}, tmin(m), tag)
	}
	fs := facts(
		parsed(ref, "v0", 0, 1),
		tagged(0, 0, "t0", 2), embedded(0, 0, "t0", 2),
		edited("v2", v2, 21), // the newer edit arrives first
		tagged(v2, 0, "t2", 22), embedded(v2, 0, "t2", 22),
		edited("v1", v1, 23), // the older edit is late: ignored
		tagged(v1, 1, "t1", 24), embedded(v1, 1, "t1", 24),
		tagged(v2, 1, "t2r", 25), embedded(v2, 1, "t2r", 25),
		embedded(v1, 1, "t1-late", 26), // an older version's embedding, late: changes nothing
	)
	snap := checkBatchIndependent(t, pool, fs)
	field(t, one(t, rowsOf(t, snap, "posts"), "post", "message_id", 7), "text", "v2")
	tags := rowsOf(t, snap, "post_tags")
	if len(tags) != 1 || tags[0]["tag"] != "t2r" {
		t.Fatalf("tags = %v, want only t2r", tags)
	}
	topics := rowsOf(t, snap, "post_topics")
	if len(topics) != 1 || topics[0]["topic"] != "t2r-topic" {
		t.Fatalf("topics = %v, want only t2r-topic", topics)
	}
	pr := one(t, rowsOf(t, snap, "pipeline_progress"), "progress", "message_id", 7)
	field(t, pr, "version", v2)
	field(t, pr, "version_at", pgTime(tmin(21)))
	field(t, pr, "tagged_revision", 1)
	field(t, pr, "tagged_at", pgTime(tmin(25)))
}

func TestChannelMerge(t *testing.T) {
	pool := newPool(t)
	fs := facts(
		events.New(events.ProducerCLI, &events.ChannelSubscribed{Username: "Foo_Bar", Backfill: events.Backfill{Days: 3}, At: tmin(1)}, tmin(1)),
		// The same channel known by id only (no username yet).
		events.New(events.ProducerIngest, &events.ChannelFailed{ChannelID: 5, Code: "FLOOD_WAIT", Reason: "wait", At: tmin(2)}, tmin(2)),
		// A sync names both: the two rows become one.
		events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: 5, Username: "foo_bar", Title: "Foo", Cursor: 9, StartedAt: tmin(3), FinishedAt: tmin(4)}, tmin(4)),
		// Later the username moves to channel 6.
		events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: 6, Username: "foo_bar", Title: "New Foo", StartedAt: tmin(5), FinishedAt: tmin(6)}, tmin(6)),
	)
	snap := checkBatchIndependent(t, pool, fs)
	chans := rowsOf(t, snap, "channels")
	if len(chans) != 2 {
		t.Fatalf("channels = %v, want 2", chans)
	}
	five := one(t, chans, "channel 5", "id", 5)
	field(t, five, "username", nil)
	field(t, five, "subscribed", true)
	field(t, five, "backfill_days", 3)
	field(t, five, "last_error_code", "FLOOD_WAIT")
	field(t, five, "title", "Foo")
	field(t, five, "last_cursor", 9)
	six := one(t, chans, "channel 6", "id", 6)
	field(t, six, "username", "foo_bar")
	field(t, six, "subscribed", false)
}

func TestErrorsAreClassified(t *testing.T) {
	ctx := context.Background()

	t.Run("unreachable server is a backend error", func(t *testing.T) {
		pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := postgres.New(ctx, pool, "tgflow"); !errors.Is(err, projections.ErrBackend) {
			t.Fatalf("New on a dead server = %v, want ErrBackend", err)
		}
	})

	t.Run("lost connections are backend errors", func(t *testing.T) {
		pool := newPool(t)
		p := newProjection(t, pool, "tgflow")
		s := projectiontest.NewScript()
		apply(t, p, s.Facts[:5], 5)
		// ALLOW_CONNECTIONS can only be changed from another database.
		cfg := pool.Config().ConnConfig.Copy()
		db := cfg.Database
		cfg.Database = "postgres"
		admin, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		allow := func(ok bool) {
			t.Helper()
			if _, err := admin.Exec(ctx, sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, pgx.Identifier{db}.Sanitize(), ok)); err != nil {
				t.Fatal(err)
			}
		}
		allow(false)
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
			t.Fatal(err)
		}
		err = p.Apply(ctx, s.Facts[5:10])
		if !errors.Is(err, projections.ErrBackend) {
			t.Fatalf("apply with the database unavailable = %v, want ErrBackend", err)
		}
		t.Logf("apply with the database unavailable: %v", err)
		allow(true)
		if err := p.Apply(ctx, s.Facts[5:10]); err != nil {
			t.Fatalf("apply after recovery: %v", err)
		}
	})

	t.Run("SQL errors are not backend errors", func(t *testing.T) {
		pool := newPool(t)
		p := newProjection(t, pool, "tgflow")
		if _, err := pool.Exec(ctx, `DROP TABLE tgflow.trends`); err != nil {
			t.Fatal(err)
		}
		s := projectiontest.NewScript()
		err := p.Apply(ctx, s.Facts)
		if err == nil || errors.Is(err, projections.ErrBackend) {
			t.Fatalf("apply into a broken schema = %v, want a non-backend error", err)
		}
		if cp, _ := p.Checkpoint(ctx); cp != 0 {
			t.Fatalf("checkpoint moved to %d after a failed batch", cp)
		}
	})
}

// TestScriptTopics: the contract script's topics are those of each post's newest
// posts.embedded; the stale embedding's and the older revision's never show.
func TestScriptTopics(t *testing.T) {
	_, _, snap := withReference(t)
	topics := rowsOf(t, snap, "post_topics")
	got := map[string][]string{}
	for _, r := range topics {
		if r["topic"] == "stale-topic" || r["topic"] == "society" {
			t.Errorf("a superseded embedding's topic shows: %v", r)
		}
		k := events.PostRef{ChannelID: events.ChannelID(int64(r["channel_id"].(float64))), MessageID: int64(r["message_id"].(float64))}.Key()
		got[k] = append(got[k], r["topic"].(string))
	}
	if e := got[projectiontest.PostEdited.Key()]; !slices.Equal(e, []string{"politics"}) {
		t.Errorf("edited post topics %v, want its edit's embedding's [politics]", e)
	}
	if r := got[projectiontest.PostReplied.Key()]; !slices.Equal(r, []string{"technology"}) {
		t.Errorf("replied post topics %v, want [technology]", r)
	}
}
