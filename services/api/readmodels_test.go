package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/api"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/search"
	"github.com/tgflow/tgflow/services/search/searchtest"
)

// realEnv is the API over the search corpus in real read models: Postgres (read-only
// session), Qdrant with the USE model, and the corpus's facts on an embedded log.
type realEnv struct {
	corpus *searchtest.Corpus
	store  api.PGStore
	h      http.Handler
}

func newRealEnv(t *testing.T) *realEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c, err := searchtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	emb := usetest.Load(t)
	evs, err := c.Events(ctx, emb)
	if err != nil {
		t.Fatal(err)
	}
	facts := searchtest.Facts(evs)
	url := searchtest.Postgres(t, facts)
	qd := searchtest.Qdrant(t, facts, emb.Info())
	nats := natstest.Start(t)
	searchtest.Publish(t, nats.JS, evs)
	pool, err := api.ReadOnlyPool(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := api.PGStore{Pool: pool, Schema: "tgflow"}
	pg := search.Postgres{DB: pool, Schema: "tgflow"}
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", Rate: 1000, Burst: 1000, Timeout: 30 * time.Second}, api.Deps{
		Search: &search.Service{FullText: pg, Hydrator: pg, Semantic: qd, Embedder: emb},
		Store:  store,
		Log:    api.NATSLog{JS: nats.JS},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &realEnv{corpus: c, store: store, h: srv.Handler()}
}

func (e *realEnv) get(t *testing.T, target string) response {
	t.Helper()
	f := &fixture{h: e.h}
	return f.get(t, target)
}

// TestAPIOverTheReadModels reads every endpoint over real Postgres, Qdrant and the log.
func TestAPIOverTheReadModels(t *testing.T) {
	env := newRealEnv(t)
	doc := loadDoc(t)

	t.Run("search: a Russian query finds the English post", func(t *testing.T) {
		r := env.get(t, "/api/search?q=%D1%80%D0%B5%D0%BA%D0%BE%D1%80%D0%B4+%D0%B2+%D0%BC%D0%B0%D1%80%D0%B0%D1%84%D0%BE%D0%BD%D0%B5&limit=3")
		must(t, r.status == 200, "search: %d %s", r.status, r.body)
		doc.check(t, "/api/search", r)
		res := decode[api.SearchResponse](t, r)
		must(t, len(res.Hits) > 0 && res.Hits[0].Key() == "1004/2" && res.Hits[0].ChannelTitle == "Globe Daily" &&
			res.Hits[0].Link == "https://t.me/globe_daily/2" && slices.Equal(res.Backends, []string{"postgres", "qdrant"}), "search: %s", r.body)
	})
	t.Run("search: filters reach both backends", func(t *testing.T) {
		r := env.get(t, "/api/search?q=go&channel=@devworld&limit=50")
		must(t, r.status == 200, "search: %d %s", r.status, r.body)
		res := decode[api.SearchResponse](t, r)
		must(t, len(res.Hits) > 0, "no hit")
		for _, h := range res.Hits {
			must(t, h.ChannelID == 1002, "hit of channel %d with channel=@devworld", h.ChannelID)
		}
	})
	t.Run("post with its facts from the log", func(t *testing.T) {
		r := env.get(t, "/api/posts/globe_daily/2")
		must(t, r.status == 200, "post: %d %s", r.status, r.body)
		doc.check(t, "/api/posts/{channel}/{id}", r)
		p := decode[api.Post](t, r)
		var types []string
		for i, f := range p.History {
			types = append(types, f.Type)
			must(t, i == 0 || f.Seq > p.History[i-1].Seq, "history out of log order: %+v", p.History)
			must(t, f.Subject == "1004/2", "a fact of %s in the history of 1004/2", f.Subject)
		}
		want := []string{string(events.TypePostParsed), string(events.TypePostTagged), string(events.TypePostEnriched), string(events.TypePostEmbedded)}
		must(t, slices.Equal(types, want), "history %q, want %q", types, want)
		must(t, p.ChannelTitle == "Globe Daily" && len(p.Tags) == 2 && p.Tags[0].Name == "marathon" && p.Embedding != nil && p.Embedding.Provider == "use",
			"post %s", r.body)
	})
	t.Run("channels with lag", func(t *testing.T) {
		r := env.get(t, "/api/channels")
		must(t, r.status == 200, "channels: %d %s", r.status, r.body)
		doc.check(t, "/api/channels", r)
		res := decode[api.ChannelsResponse](t, r)
		must(t, len(res.Channels) == 4, "channels %s", r.body)
		for _, c := range res.Channels {
			must(t, c.Posts == 16 && c.Behind == 0 && c.Title != "" && c.LastSyncedAt != nil, "channel %+v", c)
		}
	})
	t.Run("tags and trends", func(t *testing.T) {
		r := env.get(t, "/api/tags?limit=3")
		must(t, r.status == 200, "tags: %d %s", r.status, r.body)
		doc.check(t, "/api/tags", r)
		must(t, string(r.body) != "" && len(decode[struct{ Tags []api.TagCount }](t, r).Tags) == 3, "tags %s", r.body)
		r = env.get(t, "/api/trends")
		must(t, r.status == 200, "trends: %d %s", r.status, r.body)
		doc.check(t, "/api/trends", r)
	})
	t.Run("the API's session cannot write", func(t *testing.T) {
		_, err := env.store.Pool.Exec(context.Background(), `INSERT INTO tgflow.channels (id, username) VALUES (42, 'intruder')`)
		var pe *pgconn.PgError
		must(t, errors.As(err, &pe) && pe.Code == "25006", "a write through the API's pool: %v, want read_only_sql_transaction (25006)", err)
	})
}
