package fetch_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// fixture reads a page from testdata/articles.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "articles", name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// hosts is a Resolver from a fixed table: an unknown name does not exist.
type hosts map[string][]netip.Addr

func (h hosts) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := h[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// dials records what the guard let through. It refuses every address but 127.0.0.1, so
// that no test — not even one run against a deliberately broken guard — sends a packet
// anywhere but this machine's loopback.
type dials struct {
	mu   sync.Mutex
	seen []string
}

func (d *dials) observe(_, address string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, address)
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.1") {
		return fmt.Errorf("test dial observer: refusing to connect to %s", address)
	}
	return nil
}

func (d *dials) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.seen...)
}

// site is a local test server that counts requests per path and serves robots.txt as 404
// unless told otherwise.
type site struct {
	*httptest.Server
	mu     sync.Mutex
	hits   map[string]int
	agents []string
	mux    *http.ServeMux
	// portNum is the server's port; links use it with any host name the resolver maps.
	portNum int
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{hits: make(map[string]int), mux: http.NewServeMux()}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.agents = append(s.agents, r.UserAgent())
		s.mu.Unlock()
		s.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatalf("server url: %v", err)
	}
	if s.portNum, err = strconv.Atoi(u.Port()); err != nil {
		t.Fatalf("server port: %v", err)
	}
	return s
}

func (s *site) handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

func (s *site) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *site) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.hits {
		if p != "/robots.txt" {
			n += c
		}
	}
	return n
}

func (s *site) port() int { return s.portNum }

// serve answers path with body and content type.
func (s *site) serve(path, contentType string, body []byte) {
	s.handle(path, func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		if _, err := w.Write(body); err != nil {
			return // the client went away; the test checks what it received
		}
	})
}

// loopbackConfig allows 127.0.0.0/8 — the CIDR allow list under test — and the sites' ports.
func loopbackConfig(sites ...*site) fetch.Config {
	cfg := fetch.Config{AllowCIDRs: []string{"127.0.0.0/8"}, DomainRPS: 1000, DomainBurst: 1000}
	for _, s := range sites {
		cfg.Ports = append(cfg.Ports, s.port())
	}
	return cfg
}

// newFetcher builds a fetcher whose dials are observed (see dials).
func newFetcher(t *testing.T, cfg fetch.Config, opts ...fetch.Option) (*fetch.Fetcher, *dials) {
	t.Helper()
	d := &dials{}
	f, err := fetch.New(cfg, append([]fetch.Option{fetch.WithDialObserver(d.observe)}, opts...)...)
	if err != nil {
		t.Fatalf("new fetcher: %v", err)
	}
	return f, d
}

func mustFetch(t *testing.T, f *fetch.Fetcher, link string) fetch.Result {
	t.Helper()
	r, err := f.Fetch(context.Background(), link)
	if err != nil {
		t.Fatalf("fetch %s: %v", link, err)
	}
	return r
}

func wantReason(t *testing.T, r fetch.Result, want fetch.Reason) {
	t.Helper()
	if r.Reason != want {
		t.Fatalf("%s: reason %q (%s), want %q", r.URL, r.Reason, r.Detail, want)
	}
}
