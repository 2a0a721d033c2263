package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/api"
	"github.com/tgflow/tgflow/services/search"
)

// fakeStore is an in-memory read model.
type fakeStore struct {
	posts    map[string]api.Post
	channels []api.Channel
	trends   []api.Trend
	tags     []api.TagCount
	pingErr  error
	listErr  error

	mu        sync.Mutex
	trendQ    api.TrendQuery
	tagQ      api.TagQuery
	resolveCt int
}

func (s *fakeStore) Post(_ context.Context, ch events.ChannelID, msg int64) (api.Post, error) {
	p, ok := s.posts[events.PostKey(ch, msg)]
	if !ok {
		return api.Post{}, api.ErrNotFound
	}
	return p, nil
}

func (s *fakeStore) ChannelID(_ context.Context, username string) (events.ChannelID, error) {
	s.mu.Lock()
	s.resolveCt++
	s.mu.Unlock()
	for _, c := range s.channels {
		if strings.EqualFold(c.Username, username) {
			return c.ID, nil
		}
	}
	return 0, api.ErrNotFound
}

func (s *fakeStore) Channels(context.Context) ([]api.Channel, error) { return s.channels, s.listErr }

func (s *fakeStore) Trends(_ context.Context, q api.TrendQuery) ([]api.Trend, error) {
	s.mu.Lock()
	s.trendQ = q
	s.mu.Unlock()
	return s.trends[:min(q.Limit, len(s.trends))], nil
}

func (s *fakeStore) Tags(_ context.Context, q api.TagQuery) ([]api.TagCount, error) {
	s.mu.Lock()
	s.tagQ = q
	s.mu.Unlock()
	return s.tags[:min(q.Limit, len(s.tags))], nil
}

func (s *fakeStore) Ping(context.Context) error { return s.pingErr }

type fakeLog struct {
	facts map[string][]api.Fact
	since time.Time
}

func (l *fakeLog) History(_ context.Context, ch events.ChannelID, msg int64, since time.Time) ([]api.Fact, error) {
	l.since = since
	return l.facts[events.PostKey(ch, msg)], nil
}

func (l *fakeLog) Consumers(context.Context) ([]api.ConsumerLag, error) {
	return []api.ConsumerLag{{Name: "proj-postgres-v1", Pending: 3, AckPending: 1}, {Name: "tagger"}}, nil
}

// fakeFullText answers every query with the posts whose text contains a word of it.
type fakeFullText struct {
	posts []search.Hit
	mu    sync.Mutex
	last  search.Query
}

func (f *fakeFullText) FullText(_ context.Context, q search.Query) ([]search.Hit, error) {
	f.mu.Lock()
	f.last = q
	f.mu.Unlock()
	var out []search.Hit
	for _, p := range f.posts {
		for _, w := range strings.Fields(strings.ToLower(q.Text)) {
			if strings.Contains(strings.ToLower(p.Text()), w) && q.Filter.Match(p.ChannelID, p.ChannelUsername, p.Date, p.Tags, p.Topics) {
				out = append(out, p)
				break
			}
		}
	}
	return out, nil
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

type fixture struct {
	store *fakeStore
	log   *fakeLog
	ft    *fakeFullText
	srv   *api.Server
	h     http.Handler
}

func newFixture(t *testing.T, cfg api.Config) *fixture {
	t.Helper()
	posts := []search.Hit{
		{ChannelID: 1001, ChannelTitle: "Технологии сегодня", ChannelUsername: "tech_ru", MessageID: 1, Date: day("2026-01-05"),
			Tags: []string{"go", "релиз"}, Topics: []string{"programming"}},
		{ChannelID: 1002, ChannelTitle: "Dev World", ChannelUsername: "devworld", MessageID: 2, Date: day("2026-01-09"),
			Tags: []string{"typescript", "go"}, Topics: []string{"programming"}},
	}
	posts[0] = posts[0].WithText("Вышел Go 1.26: новый сборщик мусора включён по умолчанию.")
	posts[1] = posts[1].WithText("TypeScript's compiler is being ported to Go.")
	f := &fixture{
		store: &fakeStore{
			posts: map[string]api.Post{"1001/1": {ChannelID: 1001, ChannelTitle: "Технологии сегодня", ChannelUsername: "tech_ru", MessageID: 1,
				Date: day("2026-01-05"), Text: "Вышел Go 1.26: новый сборщик мусора включён по умолчанию.",
				Tags: []api.Tag{{Name: "go", Score: 1}}, Topics: []string{"programming"},
				Pages:  []api.Page{{URL: "https://go.dev/blog", Domain: "go.dev", Title: "The Go Blog", Status: 200}},
				Vision: []api.Vision{{OCRText: "Go 1.26", Labels: []string{"text"}}},
				Album:  &api.Album{GroupedID: 7, MessageIDs: []int64{1, 2}}, Embedding: &api.Embedding{Provider: "use", Model: "usem3", Dim: 512}}},
			channels: []api.Channel{{ID: 1001, Username: "tech_ru", Title: "Технологии сегодня", Subscribed: true, Posts: 16},
				{ID: 1002, Username: "devworld", Title: "Dev World", Subscribed: true, Posts: 16, Failing: true, LastError: "FLOOD_WAIT", Behind: 2}},
			trends: []api.Trend{{Tag: "go", Window: "1h", WindowStart: day("2026-01-05"), WindowEnd: day("2026-01-05").Add(time.Hour), Count: 5, Score: 4.2, Channels: []events.ChannelID{1001, 1002}, Posts: []string{"1001/1"}}},
			tags:   []api.TagCount{{Tag: "go", Posts: 2}, {Tag: "релиз", Posts: 1}},
		},
		log: &fakeLog{facts: map[string][]api.Fact{"1001/1": {
			{Seq: 5, Type: string(events.TypePostParsed), Producer: "ingest", ID: "a", Time: day("2026-01-05"), Subject: "1001/1"},
			{Seq: 9, Type: string(events.TypePostTagged), Producer: "tagger", ID: "b", Time: day("2026-01-05"), Subject: "1001/1"}}}},
		ft: &fakeFullText{posts: posts},
	}
	if cfg.Addr == "" {
		cfg = api.Config{Addr: "127.0.0.1:0", Rate: 1000, Burst: 1000, Timeout: 5 * time.Second}
	}
	srv, err := api.New(cfg, api.Deps{Search: &search.Service{FullText: f.ft}, Store: f.store, Log: f.log},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.h = srv, srv.Handler()
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) get(t *testing.T, target string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// docSchemas compiles the response schemas of the committed OpenAPI document.
type docSchemas struct {
	doc map[string]any
	c   *jsonschema.Compiler
}

func loadDoc(t *testing.T) *docSchemas {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("https://tgflow.invalid/openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	return &docSchemas{doc: doc.(map[string]any), c: c}
}

// check validates a JSON answer of path (as the document names it) with status against
// the document's schema of that answer.
func (d *docSchemas) check(t *testing.T, path string, r response) {
	t.Helper()
	op, ok := dig(d.doc, "paths", path, "get")
	if !ok {
		t.Fatalf("the document has no GET %s", path)
	}
	status := strconv.Itoa(r.status)
	if _, ok := dig(op, "responses", status); !ok {
		t.Fatalf("GET %s answered %d, which the document does not list: %s", path, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	ptr := "#/paths/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(path) + "/get/responses/" + status + "/content/application~1json/schema"
	sch, err := d.c.Compile("https://tgflow.invalid/openapi.json" + ptr)
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("GET %s: body is not JSON: %v: %s", path, err, r.body)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("GET %s (%d): the answer does not match the document:\n%v\nbody: %s", path, r.status, err, r.body)
	}
}

func dig(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
	return v
}

func errorOf(t *testing.T, r response) (string, []string) {
	t.Helper()
	var e struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body: %v: %s", err, r.body)
	}
	return e.Error, e.Problems
}

func must(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf("%s", fmt.Sprintf(format, args...))
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func httptestRequest(target, remote string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = remote
	return req
}
