package fetch_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"code.dny.dev/ssrf"

	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// forbidden is one address of every class the guard must refuse by default.
var forbidden = []struct{ class, addr string }{
	{"loopback", "127.0.0.1"},
	{"loopback, not .1", "127.9.9.9"},
	{"private 10/8", "10.1.2.3"},
	{"private 172.16/12", "172.16.5.4"},
	{"private 192.168/16", "192.168.1.1"},
	{"cloud metadata", "169.254.169.254"},
	{"link-local", "169.254.1.1"},
	{"CGNAT", "100.64.0.1"},
	{"multicast", "224.0.0.1"},
	{"this network", "0.0.0.0"},
	{"broadcast/reserved", "255.255.255.255"},
	{"IPv6 loopback", "::1"},
	{"IPv6 unspecified", "::"},
	{"IPv6 ULA fc00::/7", "fc00::1"},
	{"IPv6 ULA fd", "fd12:3456::1"},
	{"IPv6 cloud metadata (AWS)", "fd00:ec2::254"},
	{"IPv6 link-local", "fe80::1"},
	{"IPv6 multicast", "ff02::1"},
	{"IPv4-mapped loopback", "::ffff:127.0.0.1"},
	{"IPv4-mapped metadata", "::ffff:169.254.169.254"},
}

// TestGuardControl calls the dial-control function directly: every forbidden class is
// refused by default, public addresses pass, only allowed ports pass, and the allow list
// opens exactly what it names.
func TestGuardControl(t *testing.T) {
	g, err := fetch.NewGuard(nil, []int{80, 443})
	if err != nil {
		t.Fatal(err)
	}
	network := func(a netip.Addr) string {
		if a.Is4() {
			return "tcp4"
		}
		return "tcp6"
	}
	for _, f := range forbidden {
		t.Run(f.class, func(t *testing.T) {
			a := netip.MustParseAddr(f.addr)
			err := g.Control(network(a), netip.AddrPortFrom(a, 443).String(), nil)
			if !errors.Is(err, ssrf.ErrProhibitedIP) {
				t.Fatalf("%s: %v, want ErrProhibitedIP", f.addr, err)
			}
		})
	}
	for _, ok := range []string{"93.184.215.14:443", "8.8.8.8:80", "[2606:4700:4700::1111]:443"} {
		ap := netip.MustParseAddrPort(ok)
		if err := g.Control(network(ap.Addr()), ok, nil); err != nil {
			t.Errorf("public %s refused: %v", ok, err)
		}
	}
	if err := g.Control("tcp4", "93.184.215.14:22", nil); !errors.Is(err, ssrf.ErrProhibitedPort) {
		t.Errorf("port 22: %v, want ErrProhibitedPort", err)
	}
	if err := g.Control("udp4", "93.184.215.14:443", nil); !errors.Is(err, ssrf.ErrProhibitedNetwork) {
		t.Errorf("udp: %v, want ErrProhibitedNetwork", err)
	}

	allow, err := fetch.NewGuard([]string{"127.0.0.0/8", "fd12:3456::/32"}, []int{80})
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"127.0.0.1:80", "127.9.9.9:80", "[fd12:3456::1]:80", "[::ffff:127.0.0.1]:80"} {
		ap := netip.MustParseAddrPort(ok)
		if err := allow.Control(network(ap.Addr()), ok, nil); err != nil {
			t.Errorf("allowed %s refused: %v", ok, err)
		}
	}
	for _, no := range []string{"10.1.2.3:80", "169.254.169.254:80", "[::1]:80", "[fc00::1]:80"} {
		ap := netip.MustParseAddrPort(no)
		if err := allow.Control(network(ap.Addr()), no, nil); !errors.Is(err, ssrf.ErrProhibitedIP) {
			t.Errorf("%s outside the allow list: %v", no, err)
		}
	}
}

// TestFetchRefusesForbiddenAddresses goes through Fetch with default policy (no CIDR
// allowed): a host name resolving to each forbidden class, and each address as a literal,
// is refused at dial time before any connect — the dial observer, which runs only after
// the guard accepted, is never reached.
func TestFetchRefusesForbiddenAddresses(t *testing.T) {
	table := hosts{}
	for i, f := range forbidden {
		table[fmt.Sprintf("h%d.test", i)] = addrs(f.addr)
	}
	f, d := newFetcher(t, fetch.Config{Ports: []int{80}}, fetch.WithResolver(table))
	for i, fb := range forbidden {
		t.Run(fb.class, func(t *testing.T) {
			wantReason(t, mustFetch(t, f, fmt.Sprintf("http://h%d.test/page", i)), fetch.ReasonBlocked)
			host := fb.addr
			if netip.MustParseAddr(host).Is6() {
				host = "[" + host + "]"
			}
			wantReason(t, mustFetch(t, f, "http://"+host+"/page"), fetch.ReasonBlocked)
		})
	}
	if got := d.list(); len(got) != 0 {
		t.Fatalf("the guard let these through to connect: %v", got)
	}
}

// TestLoopbackNeedsTheAllowList: a live server on 127.0.0.1, reached by IP and by a name
// resolving to it, is refused with defaults and served once 127.0.0.0/8 is allowed.
func TestLoopbackNeedsTheAllowList(t *testing.T) {
	s := newSite(t)
	s.serve("/a", "text/html", fixture(t, "en-go-release.html"))
	resolver := fetch.WithResolver(hosts{"intranet.test": addrs("127.0.0.1")})
	byName := fmt.Sprintf("http://intranet.test:%d/a", s.port())

	closed, d := newFetcher(t, fetch.Config{Ports: []int{s.port()}}, resolver)
	wantReason(t, mustFetch(t, closed, s.URL+"/a"), fetch.ReasonBlocked)
	wantReason(t, mustFetch(t, closed, byName), fetch.ReasonBlocked)
	if n := s.total() + s.hitsOf("/robots.txt"); n != 0 || len(d.list()) != 0 {
		t.Fatalf("server saw %d requests, dials %v: the guard let loopback through", n, d.list())
	}

	open, _ := newFetcher(t, loopbackConfig(s), resolver)
	wantReason(t, mustFetch(t, open, s.URL+"/a"), "")
	wantReason(t, mustFetch(t, open, byName), "")
}

// TestRedirectToForbiddenAddress: an allowed server redirects to forbidden places; every
// hop is dialled through the guard, so each redirect is refused.
func TestRedirectToForbiddenAddress(t *testing.T) {
	s := newSite(t)
	port := s.port()
	targets := map[string]string{
		"/to-metadata":     "http://169.254.169.254/latest/meta-data/",
		"/to-private":      "http://10.0.0.1/admin",
		"/to-other-lo":     fmt.Sprintf("http://127.0.0.2:%d/a", port), // loopback, but not 127.0.0.1/32
		"/to-ipv6-lo":      fmt.Sprintf("http://[::1]:%d/a", port),
		"/to-name-meta":    "http://metadata.test/computeMetadata/v1/",
		"/to-name-private": fmt.Sprintf("http://router.test:%d/", port),
	}
	for from, to := range targets {
		s.handle(from, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) })
	}
	cfg := fetch.Config{AllowCIDRs: []string{"127.0.0.1/32"}, Ports: []int{80, port}, DomainRPS: 1000, DomainBurst: 1000}
	f, d := newFetcher(t, cfg, fetch.WithResolver(hosts{
		"metadata.test": addrs("169.254.169.254"),
		"router.test":   addrs("192.168.0.1"),
	}))
	for from := range targets {
		t.Run(from, func(t *testing.T) {
			r := mustFetch(t, f, s.URL+from)
			wantReason(t, r, fetch.ReasonBlocked)
			if r.FinalURL == "" {
				t.Fatal("the refused redirect target is not recorded")
			}
		})
	}
	for _, a := range d.list() {
		if netip.MustParseAddrPort(a).Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("dialled %s", a)
		}
	}
}

// TestEveryDNSAnswerIsChecked: a name answering with a forbidden and an allowed address is
// fetched from the allowed one; the forbidden one is never dialled.
func TestEveryDNSAnswerIsChecked(t *testing.T) {
	s := newSite(t)
	s.serve("/a", "text/html", fixture(t, "en-go-release.html"))
	cfg := loopbackConfig(s)
	cfg.AllowCIDRs = []string{"127.0.0.1/32"}
	f, d := newFetcher(t, cfg, fetch.WithResolver(hosts{
		"mixed.test":     addrs("10.0.0.7", "169.254.169.254", "127.0.0.1"),
		"forbidden.test": addrs("10.0.0.7", "fd00::1"),
	}))
	wantReason(t, mustFetch(t, f, fmt.Sprintf("http://mixed.test:%d/a", s.port())), "")
	wantReason(t, mustFetch(t, f, fmt.Sprintf("http://forbidden.test:%d/a", s.port())), fetch.ReasonBlocked)
	for _, a := range d.list() {
		if netip.MustParseAddrPort(a).Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("dialled %s", a)
		}
	}
}
