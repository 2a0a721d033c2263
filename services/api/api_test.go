package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ogen-go/ogen"
	"github.com/ogen-go/ogen/openapi/parser"

	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/services/api"
	"github.com/tgflow/tgflow/services/search"
)

// TestOpenAPIDocumentIsValidAndMatchesTheRoutes parses the committed document with ogen's
// OpenAPI parser (it resolves every $ref, checks parameters, schemas and operation ids) and
// requires its paths to be exactly the server's API routes.
func TestOpenAPIDocumentIsValidAndMatchesTheRoutes(t *testing.T) {
	spec, err := ogen.Parse(api.OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	parsed, err := parser.Parse(spec, parser.Settings{})
	if err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	var documented []string
	for _, op := range parsed.Operations {
		documented = append(documented, strings.ToUpper(op.HTTPMethod)+" "+op.Path.String())
	}
	var routes []string
	for _, r := range api.Routes() {
		if r.API {
			routes = append(routes, r.Method+" "+r.Path)
		}
	}
	slices.Sort(documented)
	slices.Sort(routes)
	if !slices.Equal(documented, routes) {
		t.Fatalf("documented operations %q\n   differ from the API routes %q", documented, routes)
	}
	if len(documented) != 8 {
		t.Errorf("%d operations, want 8", len(documented))
	}
}

// TestEveryEndpointAnswersWhatTheDocumentSays calls each endpoint, good and bad, and checks
// the status and that the body matches the document's schema for that status.
func TestEveryEndpointAnswersWhatTheDocumentSays(t *testing.T) {
	f := newFixture(t, api.Config{})
	doc := loadDoc(t)
	tests := []struct {
		name, target, path string
		status             int
		problems           []string // each must appear in the 400's problems
		check              func(t *testing.T, r response)
	}{
		{name: "search", target: "/api/search?q=go&limit=5", path: "/api/search", status: 200, check: func(t *testing.T, r response) {
			res := decode[api.SearchResponse](t, r)
			must(t, len(res.Hits) == 2 && res.Query.Limit == 5 && res.Backends[0] == "postgres", "search: %s", r.body)
			must(t, res.Hits[0].Link == "https://t.me/tech_ru/1" || res.Hits[0].Link == "https://t.me/devworld/2", "link %q", res.Hits[0].Link)
		}},
		{name: "search in Russian, filtered by channel username", target: "/api/search?q=%D1%81%D0%B1%D0%BE%D1%80%D1%89%D0%B8%D0%BA&channel=@tech_ru", path: "/api/search", status: 200, check: func(t *testing.T, r response) {
			res := decode[api.SearchResponse](t, r)
			must(t, len(res.Hits) == 1 && res.Hits[0].ChannelID == 1001 && res.Query.ChannelID == 1001, "hits %s", r.body)
			must(t, strings.Contains(res.Hits[0].Excerpt, "сборщик") && len(res.Hits[0].Highlights) == 1, "excerpt %q %v", res.Hits[0].Excerpt, res.Hits[0].Highlights)
		}},
		{name: "search by tag and dates", target: "/api/search?q=go&tag=%23TypeScript&since=2026-01-06&until=2026-02-01T00:00:00Z", path: "/api/search", status: 200, check: func(t *testing.T, r response) {
			res := decode[api.SearchResponse](t, r)
			must(t, len(res.Hits) == 1 && res.Hits[0].ChannelID == 1002 && res.Query.Tag == "typescript", "hits %s", r.body)
		}},
		{name: "search without q", target: "/api/search", path: "/api/search", status: 400, problems: []string{"q: the query text is empty"}},
		{name: "search limit over the page size", target: "/api/search?q=go&limit=51", path: "/api/search", status: 400, problems: []string{"limit: 51 is out of range 1..50"}},
		{name: "search limit not a number", target: "/api/search?q=go&limit=ten", path: "/api/search", status: 400, problems: []string{`limit: "ten" is not an integer`}},
		{name: "search every problem at once", target: "/api/search?q=" + strings.Repeat("a", 301) + "&since=yesterday&until=2026-13-01&colour=red", path: "/api/search", status: 400,
			problems: []string{"colour: unknown parameter", `since: "yesterday" is not a date`, `until: "2026-13-01" is not a date`, "q: 301 characters, at most 300"}},
		{name: "search dates reversed", target: "/api/search?q=go&since=2026-02-01&until=2026-01-01", path: "/api/search", status: 400, problems: []string{"since 2026-02-01T00:00:00Z is not before until 2026-01-01T00:00:00Z"}},
		{name: "search repeated parameter", target: "/api/search?q=go&q=rust", path: "/api/search", status: 400, problems: []string{"q: given 2 times, at most once"}},
		{name: "search unknown channel", target: "/api/search?q=go&channel=@nobody_here", path: "/api/search", status: 400, problems: []string{"channel: no channel @nobody_here is known"}},
		{name: "search bad channel", target: "/api/search?q=go&channel=-5", path: "/api/search", status: 400, problems: []string{`channel: "-5" is not a channel id`}},
		{name: "search tag too long", target: "/api/search?q=go&tag=" + strings.Repeat("t", 65), path: "/api/search", status: 400, problems: []string{"tag: 65 characters, at most 64"}},
		{name: "post", target: "/api/posts/1001/1", path: "/api/posts/{channel}/{id}", status: 200, check: func(t *testing.T, r response) {
			p := decode[api.Post](t, r)
			must(t, p.Text != "" && len(p.History) == 2 && p.History[1].Producer == "tagger" && p.Link == "https://t.me/tech_ru/1" && p.Album != nil, "post %s", r.body)
			must(t, f.log.since.Equal(day("2026-01-05").Add(-time.Hour)), "history read since %v", f.log.since)
		}},
		{name: "post by username", target: "/api/posts/@tech_ru/1", path: "/api/posts/{channel}/{id}", status: 200},
		{name: "post not found", target: "/api/posts/1001/99", path: "/api/posts/{channel}/{id}", status: 404},
		{name: "post of an unknown channel", target: "/api/posts/nobody_here/1", path: "/api/posts/{channel}/{id}", status: 404},
		{name: "post bad id", target: "/api/posts/1001/abc", path: "/api/posts/{channel}/{id}", status: 400, problems: []string{`id: "abc" is not a positive message id`}},
		{name: "post bad channel and id", target: "/api/posts/x!/0", path: "/api/posts/{channel}/{id}", status: 400, problems: []string{`id: "0" is not a positive`, `channel: "x!" is not a username`}},
		{name: "post with a parameter", target: "/api/posts/1001/1?full=1", path: "/api/posts/{channel}/{id}", status: 400, problems: []string{"full: unknown parameter"}},
		{name: "channels", target: "/api/channels", path: "/api/channels", status: 200, check: func(t *testing.T, r response) {
			res := decode[api.ChannelsResponse](t, r)
			must(t, len(res.Channels) == 2 && res.Channels[1].Failing && res.Channels[1].Behind == 2 && res.Consumers[0].Pending == 3, "channels %s", r.body)
		}},
		{name: "trends", target: "/api/trends?since=2026-01-01&limit=1", path: "/api/trends", status: 200, check: func(t *testing.T, r response) {
			must(t, f.store.trendQ.Limit == 1 && f.store.trendQ.Since.Equal(day("2026-01-01")), "trend query %+v", f.store.trendQ)
		}},
		{name: "trends default limit", target: "/api/trends", path: "/api/trends", status: 200, check: func(t *testing.T, r response) {
			must(t, f.store.trendQ.Limit == api.DefaultTrends, "trend query %+v", f.store.trendQ)
		}},
		{name: "trends limit over the page size", target: "/api/trends?limit=101", path: "/api/trends", status: 400, problems: []string{"limit: 101 is out of range 1..100"}},
		{name: "tags", target: "/api/tags?limit=200", path: "/api/tags", status: 200, check: func(t *testing.T, r response) {
			must(t, strings.Contains(string(r.body), `"tag":"релиз"`), "tags %s", r.body)
		}},
		{name: "tags bad since", target: "/api/tags?since=01.02.2026", path: "/api/tags", status: 400, problems: []string{`since: "01.02.2026" is not a date`}},
		{name: "tags limit zero", target: "/api/tags?limit=0", path: "/api/tags", status: 400, problems: []string{"limit: 0 is out of range 1..200"}},
		{name: "healthz", target: "/healthz", path: "/healthz", status: 200},
		{name: "readyz", target: "/readyz", path: "/readyz", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.get(t, tt.target)
			if r.status != tt.status {
				t.Fatalf("GET %s: %d, want %d: %s", tt.target, r.status, tt.status, r.body)
			}
			doc.check(t, tt.path, r)
			if tt.status == 400 {
				msg, probs := errorOf(t, r)
				if msg != "bad request" {
					t.Errorf("error %q", msg)
				}
				for _, want := range tt.problems {
					if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, want) }) {
						t.Errorf("problems %q do not say %q", probs, want)
					}
				}
				if len(probs) < len(tt.problems) {
					t.Errorf("problems %q, want at least %d", probs, len(tt.problems))
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
	t.Run("openapi.json is the committed file", func(t *testing.T) {
		r := f.get(t, "/api/openapi.json")
		must(t, r.status == 200 && string(r.body) == string(api.OpenAPI()), "GET /api/openapi.json: %d", r.status)
	})
	t.Run("readyz fails while a backend is down", func(t *testing.T) {
		f.store.pingErr = errDown
		defer func() { f.store.pingErr = nil }()
		r := f.get(t, "/readyz")
		must(t, r.status == 503 && strings.Contains(string(r.body), "connection refused"), "readyz: %d %s", r.status, r.body)
		doc.check(t, "/readyz", r)
	})
	t.Run("a backend down is a 503, a bug a 500, neither says more than it should", func(t *testing.T) {
		defer func() { f.store.listErr = nil }()
		f.store.listErr = fmt.Errorf("read channels: %w: %w", projections.ErrBackend, errDown)
		r := f.get(t, "/api/channels")
		must(t, r.status == 503 && !strings.Contains(string(r.body), "5432"), "backend down: %d %s", r.status, r.body)
		f.store.listErr = errors.New(`ERROR: column "x" does not exist (SQLSTATE 42703)`)
		r = f.get(t, "/api/channels")
		must(t, r.status == 500 && !strings.Contains(string(r.body), "column"), "bug: %d %s", r.status, r.body)
	})
	t.Run("unknown path", func(t *testing.T) {
		r := f.get(t, "/api/nothing")
		must(t, r.status == 404, "GET /api/nothing: %d", r.status)
	})
	t.Run("only GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "/api/search?q=go", nil)
		rec := newRecorder()
		f.h.ServeHTTP(rec, req)
		must(t, rec.Code == http.StatusMethodNotAllowed, "POST /api/search: %d", rec.Code)
	})
}

type errString string

func (e errString) Error() string { return string(e) }

const errDown = errString("dial tcp 127.0.0.1:5432: connection refused")

// TestRateLimitPerClient: a client over its burst gets 429 with Retry-After, another client
// is not affected, health checks are never limited.
func TestRateLimitPerClient(t *testing.T) {
	f := newFixture(t, api.Config{Addr: "127.0.0.1:0", Rate: 0.5, Burst: 3, Timeout: time.Second})
	doc := loadDoc(t)
	for i := range 3 {
		if r := f.get(t, "/api/tags"); r.status != 200 {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
	}
	r := f.get(t, "/api/tags")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("fourth request: %d, want 429", r.status)
	}
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (one token at 0.5/s)", ra)
	}
	doc.check(t, "/api/tags", r)
	if msg, _ := errorOf(t, r); !strings.Contains(msg, "at most 0.5 per second per client (burst 3)") {
		t.Errorf("429 says %q", msg)
	}
	if r := f.get(t, "/healthz"); r.status != 200 {
		t.Errorf("healthz limited: %d", r.status)
	}
	req := httptestRequest("/api/tags", "198.51.100.7:999")
	rec := newRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("another client: %d, want 200", rec.Code)
	}
}

func TestSearchPassesFiltersToTheBackends(t *testing.T) {
	f := newFixture(t, api.Config{})
	r := f.get(t, "/api/search?q=+Go+&channel=-1001002&topic=Programming&since=2026-01-01&until=2026-01-31T12:00:00%2B03:00&limit=7")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := f.ft.last
	want := search.Query{Text: "Go", Filter: search.Filter{ChannelID: 1002, Topic: "programming", Since: day("2026-01-01"),
		Until: time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)}, Limit: got.Limit}
	if got.Text != want.Text || got.ChannelID != want.ChannelID || got.Topic != want.Topic || !got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) {
		t.Fatalf("backend got %+v, want %+v", got, want)
	}
	if got.Limit < 7 {
		t.Errorf("backend asked for %d candidates, fewer than the page of 7", got.Limit)
	}
	if f.store.resolveCt != 0 {
		t.Errorf("an id was resolved as a username %d times", f.store.resolveCt)
	}
}
