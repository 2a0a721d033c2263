package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/tgflow/tgflow/events"
)

// Fetcher fetches linked pages under one policy. It is safe for concurrent use.
type Fetcher struct {
	cfg     Config
	client  *http.Client // follows no redirect: fetch does, checking each hop
	robots  *robotsCache
	limiter *domainLimiter
	cache   Cache
	log     *slog.Logger
	flight  singleflight.Group
	allow   []string
	deny    []string
	// extractSlots bounds concurrent text extractions (one per CPU).
	extractSlots chan struct{}
}

// Option sets a dependency of New.
type Option func(*options) error

type options struct {
	resolver Resolver
	cache    Cache
	log      *slog.Logger
	// observe runs after the guard accepted an address, before connect (tests).
	observe func(network, address string) error
}

// WithResolver replaces the system resolver (net.DefaultResolver).
func WithResolver(r Resolver) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("fetch: nil resolver")
		}
		o.resolver = r
		return nil
	}
}

// WithCache replaces the default MemoryCache.
func WithCache(c Cache) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("fetch: nil cache")
		}
		o.cache = c
		return nil
	}
}

// WithLogger replaces slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("fetch: nil logger")
		}
		o.log = l
		return nil
	}
}

// New builds a fetcher; cfg's zero fields take their defaults.
func New(cfg Config, opts ...Option) (*Fetcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	o := options{resolver: net.DefaultResolver, log: slog.Default()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.cache == nil {
		o.cache = NewMemoryCache(0)
	}
	guard, err := NewGuard(cfg.AllowCIDRs, cfg.Ports)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	control := guard.Control
	if o.observe != nil {
		control = func(network, address string, c syscall.RawConn) error {
			if err := guard.Control(network, address, c); err != nil {
				return err
			}
			return o.observe(network, address)
		}
	}
	d := &dialer{resolver: o.resolver, control: control}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would be dialled instead of the page: the guard must see the page's address
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	lim := newDomainLimiter(cfg.DomainRPS, cfg.DomainBurst)
	f := &Fetcher{
		cfg: cfg,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		limiter:      lim,
		cache:        o.cache,
		log:          o.log,
		allow:        domainList(cfg.AllowDomains),
		deny:         domainList(cfg.DenyDomains),
		extractSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	f.robots = &robotsCache{
		client: &http.Client{Transport: tr, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("more than %d redirects", cfg.MaxRedirects)
			}
			return nil
		}},
		limiter: lim,
		ttl:     cfg.RobotsTTL,
		ua:      cfg.UserAgent,
		log:     o.log,
		entries: make(map[string]robotsEntry),
	}
	return f, nil
}

// domainList normalises configured domains the way links are (lower case, IDNA).
func domainList(in []string) []string {
	var out []string
	for _, d := range in {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		if u, err := url.Parse(events.NormalizeLink("http://" + strings.TrimPrefix(d, "."))); err == nil && u.Hostname() != "" {
			out = append(out, u.Hostname())
		}
	}
	return out
}

func matchDomain(host string, list []string) bool {
	for _, d := range list {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// check applies the no-traffic policy to a normalised link: Telegram, scheme, domains.
func (f *Fetcher) check(r *Result, link string) *url.URL {
	if events.IsTelegramLink(link) {
		r.fail(ReasonTelegram, "a link into Telegram")
		if u, err := url.Parse(link); err == nil {
			r.Domain = u.Hostname()
		}
		return nil
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || !events.IsWebLink(link) {
		r.fail(ReasonInvalidURL, "not an http(s) URL with a host")
		return nil
	}
	host := u.Hostname()
	if r.Domain == "" {
		r.Domain = host
	}
	if matchDomain(host, f.deny) {
		r.fail(ReasonDomainPolicy, "%s is on the deny list", host)
		return nil
	}
	if len(f.allow) > 0 && !matchDomain(host, f.allow) {
		r.fail(ReasonDomainPolicy, "%s is not on the allow list", host)
		return nil
	}
	return u
}

// cachePutTimeout bounds storing a result: a caller waits at most Config.Timeout plus this.
const cachePutTimeout = 2 * time.Second

// Fetch fetches one link (normalised first) and extracts its page. A failure is a Result
// with a Reason; the error is non-nil only when ctx ended before the result was ready.
func (f *Fetcher) Fetch(ctx context.Context, link string) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	norm := events.NormalizeLink(link)
	r := Result{URL: norm}
	u := f.check(&r, norm)
	if u == nil {
		return r, nil
	}
	if c, ok, err := f.cache.Get(ctx, norm); err != nil {
		f.log.WarnContext(ctx, "page cache unavailable, fetching", "url", norm, "err", err)
	} else if ok {
		c.Cached = true
		return c, nil
	}
	// One request per URL however many posts ask at once; it runs on its own deadline, not
	// on the first caller's context, so a caller that gives up does not fail the others.
	ch := f.flight.DoChan(norm, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
		defer cancel()
		// A caller that missed the cache just before another's flight stored the page
		// finds it here instead of fetching again.
		if c, ok, err := f.cache.Get(fctx, norm); err != nil {
			f.log.WarnContext(ctx, "page cache unavailable, fetching", "url", norm, "err", err)
		} else if ok {
			c.Cached = true
			return c, nil
		}
		res, body := f.fetch(fctx, r, u)
		if res.Reason == ReasonRateLimited {
			return res, nil // our own limit, not the page's state: ask again next time
		}
		ttl := f.cfg.CacheTTL
		if !res.OK() {
			ttl = f.cfg.FailureTTL
		}
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), cachePutTimeout)
		defer pcancel()
		if err := f.cache.Put(pctx, norm, res, body, ttl); err != nil {
			f.log.WarnContext(ctx, "page cache put failed", "url", norm, "err", err)
		}
		return res, nil
	})
	select {
	case v := <-ch:
		return v.Val.(Result), nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// FetchAll fetches the links of one post: normalised and deduplicated in order, Telegram
// and policy skips recorded, the first Config.MaxLinks fetchable ones fetched (at most
// Config.Concurrency at once), the rest recorded as ReasonLinkLimit. One result per distinct
// link, in order. The error is non-nil only when ctx ended.
func (f *Fetcher) FetchAll(ctx context.Context, links []string) ([]Result, error) {
	var out []Result
	seen := make(map[string]bool)
	var jobs []int
	for _, l := range links {
		norm := events.NormalizeLink(l)
		if norm == "" || seen[norm] {
			continue
		}
		seen[norm] = true
		r := Result{URL: norm}
		if f.check(&r, norm) != nil && len(jobs) >= f.cfg.MaxLinks {
			r.fail(ReasonLinkLimit, "more than %d links in the post", f.cfg.MaxLinks)
		} else if r.Reason == "" {
			jobs = append(jobs, len(out))
		}
		out = append(out, r)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for _, i := range jobs {
		g.Go(func() error {
			r, err := f.Fetch(gctx, out[i].URL)
			if err != nil {
				return err
			}
			out[i] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// isRedirect lists the statuses followed (300 and 304 are not redirects to follow).
func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// allowedType lists the media types whose text is extracted.
func allowedType(mt string) bool {
	switch mt {
	case "text/html", "application/xhtml+xml", "text/plain":
		return true
	}
	return false
}

// fetch does the network part of Fetch on ctx (the per-link deadline). It returns the raw
// body when there is one.
func (f *Fetcher) fetch(ctx context.Context, r Result, u *url.URL) (Result, []byte) {
	r.FetchedAt = time.Now().UTC()
	fail := func(err error, what string) {
		r.fail(classify(err), "%s: %v", what, err)
	}
	cur := u
	for hop := 0; ; hop++ {
		if hop > 0 {
			if f.check(&r, cur.String()) == nil {
				return r, nil
			}
		}
		ok, err := f.robots.allowed(ctx, cur)
		if err != nil {
			fail(err, "robots.txt")
			return r, nil
		}
		if !ok {
			r.fail(ReasonRobots, "robots.txt disallows %s for %s", cur.EscapedPath(), RobotsAgent)
			return r, nil
		}
		if err := f.limiter.wait(ctx, cur.Hostname()); err != nil {
			r.fail(ReasonRateLimited, "%s: %v", rateKey(cur.Hostname()), err)
			return r, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, requestURL(cur), nil)
		if err != nil {
			r.fail(ReasonInvalidURL, "%v", err)
			return r, nil
		}
		req.Header.Set("User-Agent", f.cfg.UserAgent)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1")
		req.Header.Set("Accept-Language", "ru,en;q=0.9,*;q=0.5")
		resp, err := f.client.Do(req)
		if err != nil {
			fail(err, "get")
			return r, nil
		}
		r.Status = resp.StatusCode
		if isRedirect(resp.StatusCode) {
			loc := resp.Header.Get("Location")
			closeBody(resp.Body, f.log)
			if loc == "" {
				r.fail(ReasonHTTPStatus, "%d without Location", resp.StatusCode)
				return r, nil
			}
			if hop >= f.cfg.MaxRedirects {
				r.fail(ReasonTooManyHops, "more than %d redirects", f.cfg.MaxRedirects)
				return r, nil
			}
			next, err := cur.Parse(loc)
			if err != nil {
				r.fail(ReasonInvalidURL, "redirect to an unparsable Location")
				return r, nil
			}
			r.FinalURL = events.NormalizeLink(next.String())
			nu, err := url.Parse(r.FinalURL)
			if err != nil {
				r.fail(ReasonInvalidURL, "redirect to an unparsable Location")
				return r, nil
			}
			cur = nu
			continue
		}
		r.FinalURL = events.NormalizeLink(cur.String())
		return f.read(ctx, r, resp, cur)
	}
}

// read checks and reads a final response and extracts its page.
func (f *Fetcher) read(ctx context.Context, r Result, resp *http.Response, u *url.URL) (Result, []byte) {
	defer closeBody(resp.Body, f.log)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.fail(ReasonHTTPStatus, "status %d", resp.StatusCode)
		return r, nil
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if ct != "" && !allowedType(mt) {
		r.ContentType = mt
		r.fail(ReasonContentType, "%q is not HTML or text", ct)
		return r, nil
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		r.fail(ReasonTooLarge, "Content-Length %d is more than %d bytes", resp.ContentLength, f.cfg.MaxBytes)
		return r, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			r.fail(ReasonTimeout, "reading the body: %v", err)
		} else {
			r.fail(ReasonRead, "reading the body: %v", err)
		}
		return r, nil
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		r.fail(ReasonTooLarge, "body is more than %d bytes", f.cfg.MaxBytes)
		return r, nil
	}
	if ct == "" {
		ct = http.DetectContentType(body)
		mt, _, _ = mime.ParseMediaType(ct)
		if !allowedType(mt) {
			r.ContentType = mt
			r.fail(ReasonContentType, "undeclared content sniffed as %q", ct)
			return r, nil
		}
	}
	sum := sha256.Sum256(body)
	r.ContentType = mt
	r.Size = int64(len(body))
	r.ContentSHA256 = hex.EncodeToString(sum[:])
	// Extraction of a large page can take seconds of CPU; it runs aside so that the fetch
	// still ends at its deadline (the abandoned extraction finishes on its own, bounded by
	// the body size).
	type extracted struct {
		a   Article
		err error
	}
	// At most one extraction per CPU, abandoned ones included, so that slow pages cannot
	// pile up goroutines burning CPU: a fetch that cannot get a slot by its deadline times out.
	select {
	case f.extractSlots <- struct{}{}:
	case <-ctx.Done():
		r.fail(ReasonTimeout, "waiting for a free extractor took longer than the timeout")
		return r, body
	}
	done := make(chan extracted, 1)
	lang := resp.Header.Get("Content-Language")
	go func() {
		defer func() { <-f.extractSlots }()
		a, err := Extract(body, ct, lang, u)
		done <- extracted{a, err}
	}()
	var a Article
	select {
	case e := <-done:
		a, err = e.a, e.err
	case <-ctx.Done():
		r.fail(ReasonTimeout, "extracting the text of %d bytes took longer than the timeout", len(body))
		return r, body
	}
	r.Title, r.Site, r.Byline, r.Lang, r.Excerpt = a.Title, a.Site, a.Byline, a.Lang, a.Excerpt
	r.WordCount = a.WordCount
	r.Text, r.TextTruncated = truncateUTF8(a.Text, f.cfg.MaxTextBytes)
	r.Excerpt, _ = truncateUTF8(r.Excerpt, 1024)
	if err != nil {
		r.fail(ReasonExtractFailed, "%v", err)
	}
	return r, body
}

// requestURL spells a normalised URL for the wire: the path and query characters it keeps
// readable (Cyrillic …) percent-encoded.
func requestURL(u *url.URL) string {
	c := *u
	c.RawQuery = escapeNonASCII(c.RawQuery)
	return c.String()
}

func escapeNonASCII(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			fmt.Fprintf(&b, "%%%02X", s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
