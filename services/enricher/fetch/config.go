package fetch

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is the fetch policy, from TGFLOW_FETCH_* variables (internal/config.Load parses
// it; a zero field means its default, so tests may set only what they need).
type Config struct {
	Timeout      time.Duration `env:"TGFLOW_FETCH_TIMEOUT" envDefault:"10s" help:"longest time one link may take: robots.txt, rate limit wait, redirects and body included"`
	AllowCIDRs   []string      `env:"TGFLOW_FETCH_ALLOW_CIDRS" help:"comma-separated CIDRs the SSRF guard lets through although they are loopback, private, link-local, CGNAT or otherwise not public (e.g. 10.1.0.0/16 for an intranet wiki)"`
	Ports        []int         `env:"TGFLOW_FETCH_PORTS" envDefault:"80,443" help:"TCP ports links may be fetched from"`
	AllowDomains []string      `env:"TGFLOW_FETCH_ALLOW_DOMAINS" help:"comma-separated domains; when set, only links to them (and their subdomains) are fetched"`
	DenyDomains  []string      `env:"TGFLOW_FETCH_DENY_DOMAINS" help:"comma-separated domains (and their subdomains) never fetched"`
	MaxLinks     int           `env:"TGFLOW_FETCH_MAX_LINKS" envDefault:"5" help:"links fetched per post, at most; the rest are recorded as skipped"`
	MaxBytes     int64         `env:"TGFLOW_FETCH_MAX_BYTES" envDefault:"2097152" help:"largest page body read (decompressed); a larger page is recorded as too large"`
	MaxRedirects int           `env:"TGFLOW_FETCH_MAX_REDIRECTS" envDefault:"5" help:"redirects followed per link, at most"`
	MaxTextBytes int           `env:"TGFLOW_FETCH_MAX_TEXT_BYTES" envDefault:"32768" help:"readable text kept per page (cut at a character boundary); the word count is of the whole text"`
	DomainRPS    float64       `env:"TGFLOW_FETCH_DOMAIN_RPS" envDefault:"1" help:"requests per second to one registrable domain"`
	DomainBurst  int           `env:"TGFLOW_FETCH_DOMAIN_BURST" envDefault:"3" help:"requests to one domain allowed at once before the rate applies"`
	CacheTTL     time.Duration `env:"TGFLOW_FETCH_CACHE_TTL" envDefault:"24h" help:"how long a fetched page serves every post linking it"`
	FailureTTL   time.Duration `env:"TGFLOW_FETCH_FAILURE_TTL" envDefault:"10m" help:"how long a failed fetch is remembered instead of retried"`
	RobotsTTL    time.Duration `env:"TGFLOW_FETCH_ROBOTS_TTL" envDefault:"1h" help:"how long a site's robots.txt is cached"`
	Concurrency  int           `env:"TGFLOW_FETCH_CONCURRENCY" envDefault:"4" help:"links of one post fetched at once"`
	UserAgent    string        `env:"TGFLOW_FETCH_USER_AGENT" envDefault:"tgflow/1.0 (+https://github.com/tgflow/tgflow)" help:"User-Agent header; robots.txt rules are matched for the agent \"tgflow\""`
}

// RobotsAgent is the agent name robots.txt groups are matched against.
const RobotsAgent = "tgflow"

func (c *Config) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.CacheTTL, 24*time.Hour)
	def(&c.FailureTTL, 10*time.Minute)
	def(&c.RobotsTTL, time.Hour)
	if len(c.Ports) == 0 {
		c.Ports = []int{80, 443}
	}
	if c.MaxLinks == 0 {
		c.MaxLinks = 5
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 2 << 20
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = 5
	}
	if c.MaxTextBytes == 0 {
		c.MaxTextBytes = 32 << 10
	}
	if c.DomainRPS == 0 {
		c.DomainRPS = 1
	}
	if c.DomainBurst == 0 {
		c.DomainBurst = 3
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.UserAgent == "" {
		c.UserAgent = "tgflow/1.0 (+https://github.com/tgflow/tgflow)"
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if _, err := parseCIDRs(c.AllowCIDRs); err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.Ports {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("env: TGFLOW_FETCH_PORTS: %d is not a TCP port", p))
		}
	}
	neg := func(name string, bad bool, v any) {
		if bad {
			errs = append(errs, fmt.Errorf("env: %s: %v must be positive", name, v))
		}
	}
	neg("TGFLOW_FETCH_TIMEOUT", c.Timeout < 0, c.Timeout)
	neg("TGFLOW_FETCH_CACHE_TTL", c.CacheTTL < 0, c.CacheTTL)
	neg("TGFLOW_FETCH_FAILURE_TTL", c.FailureTTL < 0, c.FailureTTL)
	neg("TGFLOW_FETCH_ROBOTS_TTL", c.RobotsTTL < 0, c.RobotsTTL)
	neg("TGFLOW_FETCH_MAX_LINKS", c.MaxLinks < 0, c.MaxLinks)
	neg("TGFLOW_FETCH_MAX_BYTES", c.MaxBytes < 0, c.MaxBytes)
	neg("TGFLOW_FETCH_MAX_REDIRECTS", c.MaxRedirects < 0, c.MaxRedirects)
	neg("TGFLOW_FETCH_MAX_TEXT_BYTES", c.MaxTextBytes < 0, c.MaxTextBytes)
	neg("TGFLOW_FETCH_DOMAIN_RPS", c.DomainRPS < 0, c.DomainRPS)
	neg("TGFLOW_FETCH_DOMAIN_BURST", c.DomainBurst < 0, c.DomainBurst)
	neg("TGFLOW_FETCH_CONCURRENCY", c.Concurrency < 0, c.Concurrency)
	for _, d := range append(append([]string(nil), c.AllowDomains...), c.DenyDomains...) {
		if strings.ContainsAny(strings.TrimSpace(d), "/:@ ") {
			errs = append(errs, fmt.Errorf("env: TGFLOW_FETCH_ALLOW_DOMAINS/DENY_DOMAINS: %q is not a domain", d))
		}
	}
	return errors.Join(errs...)
}

// parseCIDRs parses the allow list; a bare address is a single-address prefix.
func parseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("env: TGFLOW_FETCH_ALLOW_CIDRS: %q is not a CIDR or address", s))
				continue
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("env: TGFLOW_FETCH_ALLOW_CIDRS: %q is not a CIDR", s))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
