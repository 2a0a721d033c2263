package search_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/search"
	"github.com/tgflow/tgflow/services/search/searchtest"
)

// corpusEnv is the corpus applied to real read models.
type corpusEnv struct {
	corpus *searchtest.Corpus
	pg     search.Postgres
	qd     *search.Qdrant
	emb    embed.Embedder
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newCorpusEnv(t *testing.T) *corpusEnv {
	t.Helper()
	c, err := searchtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	emb := usetest.Load(t)
	evs, err := c.Events(ctxT(t), emb)
	if err != nil {
		t.Fatal(err)
	}
	facts := searchtest.Facts(evs)
	pool, err := pgxpool.New(ctxT(t), searchtest.Postgres(t, facts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	pg := search.Postgres{DB: pool, Schema: "tgflow"}
	return &corpusEnv{corpus: c, pg: pg, qd: searchtest.Qdrant(t, facts, emb.Info()), emb: emb}
}

// rankOf is the 1-based rank of key in hits, 0 when absent.
func rankOf(hits []search.Hit, key string) int {
	for i, h := range hits {
		if h.Key() == key {
			return i + 1
		}
	}
	return 0
}

func top(hits []search.Hit, n int) string {
	var parts []string
	for i, h := range hits {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s(%.3f)", h.Key(), h.Score))
	}
	return strings.Join(parts, " ")
}

// TestSearchQualityOnTheCorpus: for every query of testdata/search the expected post is in
// the top 3 of each backend the query names — Postgres full-text for same-language queries,
// Qdrant semantic search with the real USE model for all of them, including Russian queries
// finding English posts and the reverse — and of the fused search.
func TestSearchQualityOnTheCorpus(t *testing.T) {
	env := newCorpusEnv(t)
	services := map[string]*search.Service{
		search.BackendPostgres: {FullText: env.pg, Hydrator: env.pg},
		search.BackendQdrant:   {Semantic: env.qd, Embedder: env.emb, Hydrator: env.pg},
		"fused":                {FullText: env.pg, Semantic: env.qd, Embedder: env.emb, Hydrator: env.pg},
	}
	passed := map[string]int{}
	asked := map[string]int{}
	cross := 0
	for _, q := range env.corpus.Queries {
		if _, ok := env.corpus.Post(q.Expect); !ok {
			t.Fatalf("query %q expects %s, which the corpus lacks", q.Q, q.Expect)
		}
		backends := append(slices.Clone(q.Backends), "fused")
		for _, b := range backends {
			t.Run(b+"/"+q.Q, func(t *testing.T) {
				res, err := services[b].Search(ctxT(t), search.Query{Text: q.Q, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				asked[b]++
				r := rankOf(res.Hits, q.Expect)
				t.Logf("%s: %q → %s at rank %d; top: %s", b, q.Q, q.Expect, r, top(res.Hits, 3))
				if r < 1 || r > 3 {
					t.Errorf("%s: %q: %s at rank %d, want top 3; top: %s", b, q.Q, q.Expect, r, top(res.Hits, 5))
					return
				}
				passed[b]++
				if b == search.BackendQdrant && q.Cross {
					cross++
				}
			})
		}
	}
	t.Logf("top-3: postgres %d/%d, qdrant %d/%d (cross-language %d), fused %d/%d",
		passed["postgres"], asked["postgres"], passed["qdrant"], asked["qdrant"], cross, passed["fused"], asked["fused"])
	if len(env.corpus.Queries) < 15 || len(env.corpus.Posts) < 60 {
		t.Errorf("corpus of %d posts and %d queries, want at least 60 and 15", len(env.corpus.Posts), len(env.corpus.Queries))
	}

	t.Run("a Russian query finds an English post", func(t *testing.T) {
		res, err := services[search.BackendQdrant].Search(ctxT(t), search.Query{Text: "рекорд в марафоне", Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) == 0 || res.Hits[0].Key() != "1004/2" || res.Hits[0].ChannelTitle != "Globe Daily" {
			t.Fatalf("top hit %s, want 1004/2 of Globe Daily", top(res.Hits, 3))
		}
	})
}

// TestSearchFilters runs filtered searches on each backend: every hit passes the filter, and
// a filter that excludes the expected post removes it.
func TestSearchFilters(t *testing.T) {
	env := newCorpusEnv(t)
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		name   string
		q      search.Query
		expect string // must be found ("" for none)
		absent string // must not be found
	}{
		{name: "channel", q: search.Query{Text: "go", Filter: search.Filter{ChannelID: 1002}}, expect: "1002/2", absent: "1001/1"},
		{name: "channel by username", q: search.Query{Text: "go", Filter: search.Filter{ChannelUsername: "tech_ru"}}, expect: "1001/1", absent: "1002/2"},
		{name: "tag", q: search.Query{Text: "утечка данных клиентов", Filter: search.Filter{Tag: "безопасность"}}, expect: "1001/7"},
		{name: "tag excludes", q: search.Query{Text: "утечка данных клиентов", Filter: search.Filter{Tag: "python"}}, absent: "1001/7"},
		{name: "topic", q: search.Query{Text: "ракета вывела спутники на орбиту", Filter: search.Filter{Topic: "space"}}, expect: "1003/6"},
		{name: "topic excludes", q: search.Query{Text: "ракета вывела спутники на орбиту", Filter: search.Filter{Topic: "food"}}, absent: "1003/6"},
		{name: "since", q: search.Query{Text: "marathon world record", Filter: search.Filter{Since: day("2026-01-08")}}, expect: "1004/2"},
		{name: "until excludes", q: search.Query{Text: "marathon world record", Filter: search.Filter{Until: day("2026-01-09")}}, absent: "1004/2"},
		{name: "date range", q: search.Query{Text: "bread", Filter: search.Filter{Since: day("2026-02-01"), Until: day("2026-03-01")}}, expect: "1004/12"},
	}
	backends := map[string]*search.Service{
		search.BackendPostgres: {FullText: env.pg, Hydrator: env.pg},
		search.BackendQdrant:   {Semantic: env.qd, Embedder: env.emb, Hydrator: env.pg},
	}
	for _, tt := range tests {
		for name, svc := range backends {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				q := tt.q
				q.Limit = 50
				res, err := svc.Search(ctxT(t), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range res.Hits {
					p, _ := env.corpus.Post(h.Key())
					ch := env.corpus.Channel(p.ChannelID)
					if !q.Filter.Match(p.ChannelID, ch.Username, p.Date, p.Tags, p.Topics) {
						t.Errorf("%s does not pass the filter %+v", h.Key(), q.Filter)
					}
				}
				// The backend itself applies the filter (Search checks hits again after
				// hydration, which would hide a backend that ignores it).
				var raw []search.Hit
				if name == search.BackendPostgres {
					raw, err = env.pg.FullText(ctxT(t), q)
				} else {
					vecs, eerr := env.emb.Embed(ctxT(t), []string{q.Text})
					if eerr != nil {
						t.Fatal(eerr)
					}
					if _, err := env.qd.Spaces(ctxT(t)); err != nil {
						t.Fatal(err)
					}
					raw, err = env.qd.Nearest(ctxT(t), env.emb.Info().Space(), vecs[0], q.Filter, 50)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range raw {
					p, _ := env.corpus.Post(h.Key())
					if !q.Filter.Match(p.ChannelID, env.corpus.Channel(p.ChannelID).Username, p.Date, p.Tags, p.Topics) {
						t.Errorf("the %s backend returned %s, which does not pass the filter %+v", name, h.Key(), q.Filter)
					}
				}
				if tt.expect != "" && rankOf(res.Hits, tt.expect) == 0 {
					t.Errorf("%s not found; hits %s", tt.expect, top(res.Hits, 10))
				}
				if tt.absent != "" && rankOf(res.Hits, tt.absent) != 0 {
					t.Errorf("%s found despite the filter", tt.absent)
				}
			})
		}
	}
}
