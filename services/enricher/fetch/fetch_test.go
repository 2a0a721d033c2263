package fetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// articles: what each fixture must give, and the boilerplate it must not.
var articles = []struct {
	name, file, contentType string
	title, lang, site       string
	body                    []string // sentences of the article
	boilerplate             []string // navigation, sidebars, ads, footers
}{
	{
		name: "english", file: "en-go-release.html", contentType: "text/html; charset=utf-8",
		title: "Go 1.26 released with a faster garbage collector", lang: "en", site: "The Gopher Gazette",
		body:        []string{"Green Tea garbage collector is enabled by default", "the Go 1 compatibility promise holds"},
		boilerplate: []string{"Gopher Jobs Board", "Subscribe to the newsletter", "All rights reserved", "ADVERTISEMENT", "Ten VS Code extensions"},
	},
	{
		name: "russian", file: "ru-postgres.html", contentType: "text/html",
		title: "Вышел PostgreSQL 18: асинхронный ввод-вывод и виртуальные столбцы", lang: "ru", site: "Базы данных сегодня",
		body:        []string{"подсистема асинхронного ввода-вывода", "функция uuidv7"},
		boilerplate: []string{"Вакансии для DBA", "Войти в личный кабинет", "Все права защищены", "РЕКЛАМА", "Десять ошибок при настройке репликации"},
	},
	{
		name: "russian windows-1251 declared in meta", file: "ru-snow-cp1251.html", contentType: "text/html",
		title: "Снегопад в Москве: в городе выпала месячная норма осадков", lang: "ru",
		body:        []string{"месячной норме для конца ноября", "снегоуборочной"},
		boilerplate: []string{"Погода на неделю", "Пробки и транспорт", "Перепечатка материалов"},
	},
}

func TestFetchExtractsArticles(t *testing.T) {
	s := newSite(t)
	for i, a := range articles {
		s.serve(fmt.Sprintf("/a/%d", i), a.contentType, fixture(t, a.file))
	}
	f, _ := newFetcher(t, loopbackConfig(s))
	for i, a := range articles {
		t.Run(a.name, func(t *testing.T) {
			r := mustFetch(t, f, fmt.Sprintf("%s/a/%d?utm_source=tg#top", s.URL, i))
			wantReason(t, r, "")
			if want := fmt.Sprintf("%s/a/%d", s.URL, i); r.URL != want || r.FinalURL != want {
				t.Errorf("url %q final %q, want %q", r.URL, r.FinalURL, want)
			}
			if r.Title != a.title {
				t.Errorf("title %q, want %q", r.Title, a.title)
			}
			if r.Lang != a.lang {
				t.Errorf("lang %q, want %q", r.Lang, a.lang)
			}
			if a.site != "" && r.Site != a.site {
				t.Errorf("site %q, want %q", r.Site, a.site)
			}
			for _, b := range a.body {
				if !strings.Contains(r.Text, b) {
					t.Errorf("text lacks the article's %q:\n%s", b, r.Text)
				}
			}
			for _, b := range a.boilerplate {
				if strings.Contains(r.Text, b) {
					t.Errorf("text holds boilerplate %q", b)
				}
			}
			sum := sha256.Sum256(fixture(t, a.file))
			if r.ContentSHA256 != hex.EncodeToString(sum[:]) || r.Status != 200 || r.Domain != "127.0.0.1" {
				t.Errorf("sha %s status %d domain %q", r.ContentSHA256, r.Status, r.Domain)
			}
			if r.WordCount < 100 || r.WordCount != len(strings.Fields(r.Text)) || r.Excerpt == "" {
				t.Errorf("word count %d, excerpt %q", r.WordCount, r.Excerpt)
			}
			p := r.Page()
			if p.Error != "" || p.Title != r.Title || p.Text != r.Text || p.Domain != r.Domain || p.FetchedAt.IsZero() {
				t.Errorf("page %+v does not carry the result", p)
			}
		})
	}
	if got := s.agents[0]; !strings.Contains(got, "tgflow") {
		t.Errorf("User-Agent %q does not name tgflow", got)
	}
}

func TestEnglishByline(t *testing.T) {
	u := mustParseURL(t, "https://gazette.example/news/go-1-26")
	a, err := fetch.Extract(fixture(t, "en-go-release.html"), "text/html", "", u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Byline, "Alice Marlowe") {
		t.Fatalf("byline %q", a.Byline)
	}
}

func TestTextIsTruncatedAtACharacter(t *testing.T) {
	s := newSite(t)
	s.serve("/a", "text/html", fixture(t, "ru-postgres.html"))
	cfg := loopbackConfig(s)
	// The text starts "Автор: Мария Соколова, 25 сентября 2025\n\nГлобальная группа разработки":
	// byte 102 is inside the "р" of "разработки", so 101 bytes are kept.
	cfg.MaxTextBytes = 102
	f, _ := newFetcher(t, cfg)
	r := mustFetch(t, f, s.URL+"/a")
	wantReason(t, r, "")
	if !r.TextTruncated || len(r.Text) != 101 || !utf8.ValidString(r.Text) || strings.ContainsRune(r.Text, '\uFFFD') {
		t.Fatalf("truncated=%v len=%d text %q", r.TextTruncated, len(r.Text), r.Text)
	}
	if r.WordCount < 100 {
		t.Fatalf("word count %d is not of the whole text", r.WordCount)
	}
}

func TestRedirects(t *testing.T) {
	s := newSite(t)
	s.serve("/final", "text/html", fixture(t, "en-go-release.html"))
	s.handle("/r/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/r/%d", &n); err != nil {
			http.Error(w, "bad hop", http.StatusBadRequest)
			return
		}
		next := fmt.Sprintf("/r/%d", n-1)
		if n == 1 {
			next = "/final"
		}
		codes := []int{301, 302, 303, 307, 308}
		http.Redirect(w, r, next, codes[n%len(codes)])
	})
	f, _ := newFetcher(t, loopbackConfig(s))
	tests := []struct {
		name string
		hops int
		want fetch.Reason
	}{
		{name: "one redirect", hops: 1},
		{name: "five redirects are followed", hops: 5},
		{name: "six redirects are refused", hops: 6, want: fetch.ReasonTooManyHops},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustFetch(t, f, fmt.Sprintf("%s/r/%d", s.URL, tt.hops))
			wantReason(t, r, tt.want)
			if tt.want == "" && (r.FinalURL != s.URL+"/final" || r.Title == "") {
				t.Fatalf("final %q title %q", r.FinalURL, r.Title)
			}
		})
	}
	if n := s.hitsOf("/final"); n != 2 {
		t.Fatalf("final page requested %d times, want 2 (the six-hop chain must stop before it)", n)
	}
}

func TestOversizePages(t *testing.T) {
	const limit = 2 << 20 // the default: 2 MiB
	s := newSite(t)
	exact := bytes.Repeat([]byte("word "), limit/5)
	exact = append(exact, bytes.Repeat([]byte("x"), limit-len(exact))...)
	over := append(bytes.Clone(exact), 'y')
	s.serve("/exact", "text/plain; charset=utf-8", exact)
	s.serve("/over", "text/plain; charset=utf-8", over)
	// Chunked, with no Content-Length and far longer than the limit: the limit must hold
	// while reading, so the client hangs up long before the server has written it all.
	var streamed sync.WaitGroup
	streamed.Add(1)
	completed := false
	s.handle("/stream", func(w http.ResponseWriter, _ *http.Request) {
		defer streamed.Done()
		w.Header().Set("Content-Type", "text/html")
		chunk := bytes.Repeat([]byte("<p>lorem ipsum</p>"), 4096)
		for sent := 0; sent <= 16*limit; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client stopped reading: what the test expects
			}
			w.(http.Flusher).Flush()
		}
		completed = true
	})
	f, _ := newFetcher(t, loopbackConfig(s))
	tests := []struct {
		path string
		want fetch.Reason
	}{
		{"/exact", ""},
		{"/over", fetch.ReasonTooLarge},
		{"/stream", fetch.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := mustFetch(t, f, s.URL+tt.path)
			wantReason(t, r, tt.want)
			if tt.want == "" && r.Size != limit {
				t.Fatalf("size %d, want %d", r.Size, limit)
			}
		})
	}
	streamed.Wait()
	if completed {
		t.Fatalf("the client read all %d MiB of the stream: the read is not limited", 16*limit>>20)
	}
}

func TestContentTypes(t *testing.T) {
	s := newSite(t)
	page := fixture(t, "en-go-release.html")
	tests := []struct {
		name, contentType string
		body              []byte
		want              fetch.Reason
	}{
		{name: "html", contentType: "text/html; charset=utf-8", body: page},
		{name: "xhtml", contentType: "application/xhtml+xml", body: page},
		{name: "plain text", contentType: "text/plain", body: []byte("Just some text.\n\nTwo paragraphs.")},
		{name: "undeclared html is sniffed", body: page},
		{name: "png", contentType: "image/png", body: []byte("\x89PNG\r\n\x1a\n...."), want: fetch.ReasonContentType},
		{name: "json", contentType: "application/json", body: []byte(`{"a":1}`), want: fetch.ReasonContentType},
		{name: "pdf", contentType: "application/pdf", body: []byte("%PDF-1.7"), want: fetch.ReasonContentType},
		{name: "undeclared binary", body: []byte("\x00\x01\x02\x03binary"), want: fetch.ReasonContentType},
	}
	for i, tt := range tests {
		s.serve(fmt.Sprintf("/t/%d", i), tt.contentType, tt.body)
	}
	f, _ := newFetcher(t, loopbackConfig(s))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustFetch(t, f, fmt.Sprintf("%s/t/%d", s.URL, i))
			if tt.want == "" {
				wantReason(t, r, "")
				if r.Text == "" {
					t.Fatal("no text")
				}
				return
			}
			wantReason(t, r, fetch.ReasonContentType)
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	s := newSite(t)
	s.handle("/gone", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "gone", http.StatusGone) })
	s.handle("/moved-nowhere", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusFound) })
	f, _ := newFetcher(t, loopbackConfig(s))
	r := mustFetch(t, f, s.URL+"/gone")
	wantReason(t, r, fetch.ReasonHTTPStatus)
	if r.Status != http.StatusGone || !strings.HasPrefix(r.Page().Error, "http_status: ") {
		t.Fatalf("status %d, page error %q", r.Status, r.Page().Error)
	}
	wantReason(t, mustFetch(t, f, s.URL+"/moved-nowhere"), fetch.ReasonHTTPStatus)
}

func TestRobots(t *testing.T) {
	s := newSite(t)
	s.serve("/robots.txt", "text/plain", []byte("User-agent: *\nDisallow: /all-bots\n\nUser-agent: tgflow\nDisallow: /private\n"))
	page := fixture(t, "en-go-release.html")
	for _, p := range []string{"/private/a", "/public/a", "/public/b", "/all-bots/a"} {
		s.serve(p, "text/html", page)
	}
	down := newSite(t)
	down.handle("/robots.txt", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	down.serve("/a", "text/html", page)

	f, _ := newFetcher(t, loopbackConfig(s, down))
	wantReason(t, mustFetch(t, f, s.URL+"/private/a"), fetch.ReasonRobots)
	wantReason(t, mustFetch(t, f, s.URL+"/public/a"), "")
	wantReason(t, mustFetch(t, f, s.URL+"/public/b"), "")
	// Our own group replaces the * group (RFC 9309): /all-bots is not closed to tgflow.
	wantReason(t, mustFetch(t, f, s.URL+"/all-bots/a"), "")
	if n := s.hitsOf("/private/a"); n != 0 {
		t.Fatalf("the disallowed page was requested %d times", n)
	}
	if n := s.hitsOf("/robots.txt"); n != 1 {
		t.Fatalf("robots.txt requested %d times, want 1 (cached)", n)
	}
	// A robots.txt answering 5xx closes the site (RFC 9309: unreachable → disallow all).
	wantReason(t, mustFetch(t, f, down.URL+"/a"), fetch.ReasonRobots)
	if n := down.hitsOf("/a"); n != 0 {
		t.Fatalf("a page of a site whose robots.txt fails was requested %d times", n)
	}
}

func TestOneFetchServesEveryPost(t *testing.T) {
	s := newSite(t)
	s.serve("/article", "text/html", fixture(t, "ru-postgres.html"))
	f, _ := newFetcher(t, loopbackConfig(s))
	ctx := context.Background()

	post1, err := f.FetchAll(ctx, []string{s.URL + "/article?utm_source=channel1"})
	if err != nil {
		t.Fatal(err)
	}
	post2, err := f.FetchAll(ctx, []string{s.URL + "/article#comments", s.URL + "/article?fbclid=x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(post1) != 1 || len(post2) != 1 {
		t.Fatalf("results %d and %d, want one each (one normalised link)", len(post1), len(post2))
	}
	wantReason(t, post1[0], "")
	if !post2[0].Cached || post2[0].Title != post1[0].Title || post2[0].Text != post1[0].Text {
		t.Fatalf("second post: cached=%v title %q", post2[0].Cached, post2[0].Title)
	}
	if n := s.hitsOf("/article"); n != 1 {
		t.Fatalf("server saw %d requests for the page, want 1", n)
	}
}

func TestConcurrentPostsShareOneRequest(t *testing.T) {
	s := newSite(t)
	release := make(chan struct{})
	page := fixture(t, "en-go-release.html")
	s.handle("/slow", func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Content-Type", "text/html")
		if _, err := w.Write(page); err != nil {
			return
		}
	})
	f, _ := newFetcher(t, loopbackConfig(s))
	const posts = 8
	var wg sync.WaitGroup
	results := make([]fetch.Result, posts)
	errs := make([]error, posts)
	for i := range posts {
		wg.Go(func() {
			results[i], errs[i] = f.Fetch(context.Background(), fmt.Sprintf("%s/slow?utm_campaign=%d", s.URL, i))
		})
	}
	natstest.Eventually(t, 10*time.Second, "the first request to arrive", func() bool { return s.hitsOf("/slow") > 0 })
	close(release)
	wg.Wait()
	for i := range posts {
		if errs[i] != nil || !results[i].OK() {
			t.Fatalf("post %d: %v %q %s", i, errs[i], results[i].Reason, results[i].Detail)
		}
	}
	if n := s.hitsOf("/slow"); n != 1 {
		t.Fatalf("server saw %d requests, want 1", n)
	}
}

func TestRateLimitIsPerDomain(t *testing.T) {
	s := newSite(t)
	s.serve("/p", "text/html", fixture(t, "en-go-release.html"))
	cfg := loopbackConfig(s)
	// Two requests (robots.txt and the page) per domain, then one an hour: the next request
	// to the same registrable domain would wait past the timeout, so it fails at once.
	cfg.DomainRPS, cfg.DomainBurst, cfg.Timeout = 1.0/3600, 2, 5*time.Second
	lo := addrs("127.0.0.1")
	f, _ := newFetcher(t, cfg, fetch.WithResolver(hosts{"a.example.test": lo, "b.example.test": lo, "other.test": lo}))
	link := func(host string) string { return fmt.Sprintf("http://%s:%d/p", host, s.port()) }

	wantReason(t, mustFetch(t, f, link("a.example.test")), "")
	wantReason(t, mustFetch(t, f, link("b.example.test")), fetch.ReasonRateLimited)
	wantReason(t, mustFetch(t, f, link("other.test")), "")
	if n := s.hitsOf("/p"); n != 2 {
		t.Fatalf("server saw %d page requests, want 2", n)
	}
	// A rate-limited link is not remembered as failed: it is asked again next time.
	wantReason(t, mustFetch(t, f, link("b.example.test")), fetch.ReasonRateLimited)
}

func TestPolicySkipsSendNothing(t *testing.T) {
	s := newSite(t)
	s.serve("/", "text/html", fixture(t, "en-go-release.html"))
	cfg := loopbackConfig(s)
	cfg.DenyDomains = []string{"denied.test"}
	cfg.MaxLinks = 2
	lo := addrs("127.0.0.1")
	f, d := newFetcher(t, cfg, fetch.WithResolver(hosts{"denied.test": lo, "www.denied.test": lo, "ok.test": lo, "ok2.test": lo, "ok3.test": lo}))
	link := func(host, path string) string { return fmt.Sprintf("http://%s:%d%s", host, s.port(), path) }
	res, err := f.FetchAll(context.Background(), []string{
		"https://t.me/durov/1",
		"tg://resolve?domain=durov",
		link("www.denied.test", "/x"),
		"ftp://ok.test/file",
		link("ok.test", "/a"),
		link("ok2.test", "/b"),
		link("ok.test", "/a#again"),
		link("ok3.test", "/c"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []fetch.Reason{fetch.ReasonTelegram, fetch.ReasonTelegram, fetch.ReasonDomainPolicy, fetch.ReasonInvalidURL, "", "", fetch.ReasonLinkLimit}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		if res[i].Reason != w {
			t.Errorf("result %d (%s): reason %q (%s), want %q", i, res[i].URL, res[i].Reason, res[i].Detail, w)
		}
		if res[i].Page().Domain == "" {
			t.Errorf("result %d has no domain for the fact", i)
		}
	}
	if got := s.total(); got != 2 {
		t.Fatalf("server saw %d page requests, want 2", got)
	}
	if len(d.list()) != 2 {
		t.Fatalf("dials %v, want two (ok.test and ok2.test)", d.list())
	}

	allowOnly := loopbackConfig(s)
	allowOnly.AllowDomains = []string{"ok.test"}
	g, _ := newFetcher(t, allowOnly, fetch.WithResolver(hosts{"ok.test": lo, "sub.ok.test": lo, "ok2.test": lo}))
	wantReason(t, mustFetch(t, g, link("sub.ok.test", "/")), "")
	wantReason(t, mustFetch(t, g, link("ok2.test", "/")), fetch.ReasonDomainPolicy)
}

func TestDNSAndConnectFailures(t *testing.T) {
	s := newSite(t)
	port := s.port()
	s.Close() // nothing listens on port any more
	cfg := loopbackConfig()
	cfg.Ports = []int{port}
	f, _ := newFetcher(t, cfg, fetch.WithResolver(hosts{"closed.test": addrs("127.0.0.1")}))
	wantReason(t, mustFetch(t, f, fmt.Sprintf("http://missing.test:%d/", port)), fetch.ReasonDNS)
	wantReason(t, mustFetch(t, f, fmt.Sprintf("http://closed.test:%d/", port)), fetch.ReasonConnect)
}

func TestTimeoutBoundsAFetch(t *testing.T) {
	s := newSite(t)
	// Both give up after 15s, so that a fetcher without a timeout fails the test below
	// instead of hanging it.
	s.handle("/hang", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(15 * time.Second):
		}
	})
	s.handle("/trickle", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
			if _, err := w.Write([]byte("<p>x</p>")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	// A link farm close to the size limit: seconds of readability's CPU time on this machine.
	s.serve("/heavy", "text/html", []byte("<html><body>"+strings.Repeat("<p><a href='/x'>link</a> word</p>", 60000)+"</body></html>"))
	cfg := loopbackConfig(s)
	cfg.Timeout = 300 * time.Millisecond
	f, _ := newFetcher(t, cfg)
	for _, path := range []string{"/hang", "/trickle", "/heavy"} {
		t.Run(path, func(t *testing.T) {
			done := make(chan fetch.Result, 1)
			go func() {
				r, err := f.Fetch(context.Background(), s.URL+path)
				if err != nil {
					r.Detail = err.Error()
				}
				done <- r
			}()
			select {
			case r := <-done:
				wantReason(t, r, fetch.ReasonTimeout)
				t.Logf("%s: %s", path, r.Detail)
			case <-time.After(10 * time.Second): // liveness only: far beyond the 300ms timeout
				t.Fatal("fetch outlived its timeout")
			}
		})
	}
}

func TestCallerCancellationIsAnError(t *testing.T) {
	s := newSite(t)
	s.handle("/hang", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	cfg := loopbackConfig(s)
	cfg.Timeout = 3 * time.Second
	f, _ := newFetcher(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	type answer struct {
		r   fetch.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := f.Fetch(ctx, s.URL+"/hang")
		done <- answer{r, err}
	}()
	natstest.Eventually(t, 10*time.Second, "the request to arrive", func() bool { return s.hitsOf("/hang") > 0 })
	cancel()
	if a := <-done; a.err == nil {
		t.Fatalf("a cancelled caller got a result %+v, not an error", a.r)
	}
	if _, err := f.FetchAll(ctx, []string{s.URL + "/hang"}); err == nil {
		t.Fatal("FetchAll on a cancelled context returned no error")
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	var cfg fetch.Config
	err := config.Load(&cfg, map[string]string{
		"TGFLOW_FETCH_TIMEOUT":     "3s",
		"TGFLOW_FETCH_ALLOW_CIDRS": "10.1.0.0/16, 127.0.0.1,fd00::/8",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout != 3*time.Second || len(cfg.AllowCIDRs) != 3 || cfg.MaxBytes != 2<<20 || cfg.MaxRedirects != 5 || len(cfg.Ports) != 2 {
		t.Fatalf("config %+v", cfg)
	}
	var defaults fetch.Config
	if err := config.Load(&defaults, map[string]string{}); err != nil || defaults.Timeout != 10*time.Second {
		t.Fatalf("default timeout %s, err %v", defaults.Timeout, err)
	}
	var bad fetch.Config
	err = config.Load(&bad, map[string]string{"TGFLOW_FETCH_ALLOW_CIDRS": "10.0.0.0/33,intranet"})
	if err == nil || !strings.Contains(err.Error(), "TGFLOW_FETCH_ALLOW_CIDRS") || !strings.Contains(err.Error(), "intranet") {
		t.Fatalf("bad CIDRs: %v", err)
	}
}

// TestRedirectHopsMeetThePolicy: each redirect target is checked like a posted link.
func TestRedirectHopsMeetThePolicy(t *testing.T) {
	s := newSite(t)
	targets := map[string]struct {
		to   string
		want fetch.Reason
	}{
		"/to-telegram": {"https://t.me/somechannel/5", fetch.ReasonTelegram},
		"/to-denied":   {fmt.Sprintf("http://denied.test:%d/x", s.port()), fetch.ReasonDomainPolicy},
		"/to-ftp":      {"ftp://files.example.com/a.txt", fetch.ReasonInvalidURL},
	}
	for from, tt := range targets {
		s.handle(from, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, tt.to, http.StatusMovedPermanently) })
	}
	cfg := loopbackConfig(s)
	cfg.DenyDomains = []string{"denied.test"}
	f, _ := newFetcher(t, cfg, fetch.WithResolver(hosts{"denied.test": addrs("127.0.0.1")}))
	for from, tt := range targets {
		t.Run(from, func(t *testing.T) {
			r := mustFetch(t, f, s.URL+from)
			wantReason(t, r, tt.want)
			if r.FinalURL == "" || r.Status != http.StatusMovedPermanently {
				t.Fatalf("final %q status %d", r.FinalURL, r.Status)
			}
		})
	}
	if n := s.hitsOf("/x"); n != 0 {
		t.Fatalf("the denied target was requested %d times", n)
	}
}
