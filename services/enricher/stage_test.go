package enricher_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/enricher"
	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// articleServer serves the project's Russian article fixture on loopback and counts hits.
func articleServer(t *testing.T) (base string, port int, hits *atomic.Int64) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "articles", "ru-postgres.html"))
	if err != nil {
		t.Fatal(err)
	}
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
			http.NotFound(w, r)
		case "/article":
			hits.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return srv.URL, port, hits
}

func fetcher(t *testing.T, port int, opts ...fetch.Option) *fetch.Fetcher {
	t.Helper()
	f, err := fetch.New(fetch.Config{AllowCIDRs: []string{"127.0.0.0/8"}, Ports: []int{80, 443, port}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func tagged(msg int64, text string, links ...string) events.Event {
	p := &events.PostTagged{
		PostRef: events.PostRef{ChannelID: 1234567890, MessageID: msg},
		Rev:     events.Rev{Version: 1761991200, Revision: 1},
		Trigger: events.TriggerVisionRetag,
		Tags:    []events.Tag{{Name: "go", Score: 0.9}},
		Topics:  []string{"programming"}, TopicsSource: events.TopicsFromTagger + "openai/chat-model",
		PostedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		Text:     text, Links: links, Vision: "скриншот", Provider: "openai", Model: "chat-model",
	}
	return events.New("test", p, p.PostedAt, "v")
}

func TestStageContract(t *testing.T) {
	base, port, _ := articleServer(t)
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerEnricher,
		Router: func(t *testing.T) *worker.Router {
			h, err := enricher.NewHandler(fetcher(t, port))
			if err != nil {
				t.Fatal(err)
			}
			return enricher.Router(h)
		},
		Inputs: []events.Event{tagged(1, "статья "+base+"/article"), tagged(2, "без ссылок")},
	})
}

// TestStageOnTheLog: every tagged revision gets exactly one posts.enriched with its pages
// or the reason for each missing one, and one fetch serves two posts linking one page.
func TestStageOnTheLog(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	base, port, hits := articleServer(t)
	kv, err := env.JS.KeyValue(ctx, topology.BucketPages)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := env.JS.ObjectStore(ctx, topology.ObjectPages)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := fetch.NewKVCache(kv, obj)
	if err != nil {
		t.Fatal(err)
	}
	f := fetcher(t, port, fetch.WithCache(cache))

	inputs := []events.Event{
		tagged(1, "Читайте: "+base+"/article?utm_source=tg и https://t.me/durov/1", "http://10.0.0.1/admin"),
		tagged(2, "Та же статья: "+base+"/article"),
		tagged(3, "Без ссылок вовсе"),
	}
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dups, err := pub.Publish(ctx, inputs[:1]); err != nil || dups != 0 {
		t.Fatalf("publish: %d %v", dups, err)
	}
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: env.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
	st, err := enricher.NewStage(d, enricher.Config{Concurrency: 4}, f)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := st.Run(rctx); err != nil {
			t.Error(err)
		}
	})
	defer func() { cancel(); wg.Wait() }()

	outputs := func() map[int64]*events.PostEnriched {
		got := map[int64]*events.PostEnriched{}
		for _, ev := range natstest.Facts(t, env.JS, "posts.enriched.>") {
			p := ev.Data.(*events.PostEnriched)
			if got[p.MessageID] != nil {
				t.Fatalf("two posts.enriched for post %d", p.MessageID)
			}
			got[p.MessageID] = p
		}
		return got
	}
	natstest.Eventually(t, 60*time.Second, "post 1 enriched", func() bool { return len(outputs()) == 1 })
	if dups, err := pub.Publish(ctx, inputs[1:]); err != nil || dups != 0 {
		t.Fatalf("publish: %d %v", dups, err)
	}
	natstest.Eventually(t, 60*time.Second, "every post enriched", func() bool { return len(outputs()) == 3 })
	got := outputs()

	p1 := got[1]
	if p1.Rev != (events.Rev{Version: 1761991200, Revision: 1}) || p1.Vision != "скриншот" || !slices.Equal(p1.Topics, []string{"programming"}) ||
		p1.TopicsSource != events.TopicsFromTagger+"openai/chat-model" || p1.Tags[0] != "go" {
		t.Errorf("post 1 lost what the tagger said: %+v", p1)
	}
	reasons := map[string]string{}
	for _, pg := range p1.Pages {
		reasons[pg.URL] = pg.Reason
		if strings.HasPrefix(pg.URL, base) {
			if pg.Reason != "" || pg.Title == "" || pg.WordCount == 0 || pg.Lang != "ru" {
				t.Errorf("article page: %+v", pg)
			}
			if strings.Contains(pg.URL, "utm_source") {
				t.Errorf("tracking parameter kept: %s", pg.URL)
			}
		}
	}
	if reasons["https://t.me/durov/1"] != string(fetch.ReasonTelegram) {
		t.Errorf("telegram link: reasons %v", reasons)
	}
	if reasons["http://10.0.0.1/admin"] != string(fetch.ReasonBlocked) {
		t.Errorf("private address: reasons %v", reasons)
	}
	if len(got[2].Pages) != 1 || got[2].Pages[0].Title != func() string {
		for _, pg := range p1.Pages {
			if strings.HasPrefix(pg.URL, base) {
				return pg.Title
			}
		}
		return "?"
	}() {
		t.Errorf("post 2 pages: %+v", got[2].Pages)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the article was fetched %d times for two posts, want 1 (cache)", n)
	}
	if len(got[3].Pages) != 0 {
		t.Errorf("post without links has pages: %+v", got[3].Pages)
	}
}
