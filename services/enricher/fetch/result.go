package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"code.dny.dev/ssrf"

	"github.com/tgflow/tgflow/events"
)

// Reason says why a link gave no page. The empty Reason is success.
type Reason string

// Every reason a link is skipped or fails. Skips (the first group) send no traffic.
const (
	ReasonTelegram      Reason = "telegram"      // a link into Telegram (t.me …), skipped
	ReasonInvalidURL    Reason = "invalid_url"   // not an http(s) URL with a host
	ReasonDomainPolicy  Reason = "domain_policy" // on the deny list, or not on the allow list
	ReasonLinkLimit     Reason = "link_limit"    // beyond Config.MaxLinks for the post
	ReasonBlocked       Reason = "ssrf_blocked"  // the SSRF guard refused the address or port
	ReasonDNS           Reason = "dns"           // the host does not resolve
	ReasonConnect       Reason = "connect"       // connection refused or reset, TLS failure
	ReasonTimeout       Reason = "timeout"       // Config.Timeout passed
	ReasonRateLimited   Reason = "rate_limited"  // the domain's rate limit would outlast the timeout
	ReasonRobots        Reason = "robots"        // robots.txt disallows it for tgflow
	ReasonTooManyHops   Reason = "redirects"     // more than Config.MaxRedirects redirects
	ReasonHTTPStatus    Reason = "http_status"   // a status other than 2xx (Result.Status says which)
	ReasonContentType   Reason = "content_type"  // not HTML, XHTML or plain text
	ReasonTooLarge      Reason = "too_large"     // body larger than Config.MaxBytes
	ReasonExtractFailed Reason = "extract"       // the body gave no readable text
	ReasonRead          Reason = "read"          // the body broke off while being read
)

// Result is what one link gave: a page, or the reason there is none.
type Result struct {
	URL           string    `json:"url"`                 // the link, normalised
	FinalURL      string    `json:"final_url,omitempty"` // after redirects, normalised
	Domain        string    `json:"domain"`              // host of URL
	Status        int       `json:"status,omitempty"`
	ContentType   string    `json:"content_type,omitempty"`
	Title         string    `json:"title,omitempty"`
	Site          string    `json:"site,omitempty"`
	Byline        string    `json:"byline,omitempty"`
	Lang          string    `json:"lang,omitempty"`
	Excerpt       string    `json:"excerpt,omitempty"`
	Text          string    `json:"text,omitempty"`
	TextTruncated bool      `json:"text_truncated,omitempty"`
	WordCount     int       `json:"word_count,omitempty"`
	Size          int64     `json:"size,omitempty"` // body bytes read
	ContentSHA256 string    `json:"content_sha256,omitempty"`
	FetchedAt     time.Time `json:"fetched_at,omitzero"`
	Reason        Reason    `json:"reason,omitempty"`
	Detail        string    `json:"detail,omitempty"` // human detail of Reason
	// Cached is true when the result came from the Cache or from another caller's request.
	Cached bool `json:"-"`
}

// OK reports whether the link gave a page.
func (r Result) OK() bool { return r.Reason == "" }

// Page is the result as the posts.enriched fact records it. A failure is recorded as
// Error = "<reason>: <detail>", the reason first so that it can be grouped on.
func (r Result) Page() events.Page {
	p := events.Page{
		URL:           r.URL,
		FinalURL:      r.FinalURL,
		Domain:        r.Domain,
		Status:        r.Status,
		Title:         r.Title,
		Site:          r.Site,
		Byline:        r.Byline,
		Excerpt:       r.Excerpt,
		Text:          r.Text,
		WordCount:     r.WordCount,
		Lang:          r.Lang,
		ContentSHA256: r.ContentSHA256,
		FetchedAt:     r.FetchedAt,
		Reason:        string(r.Reason),
	}
	if p.Domain == "" {
		p.Domain = "-" // events.PostEnriched requires one; a link with no host has none
	}
	if r.Reason != "" {
		p.Error = string(r.Reason)
		if r.Detail != "" {
			p.Error += ": " + r.Detail
		}
	}
	return p
}

func (r *Result) fail(reason Reason, format string, args ...any) {
	r.Reason = reason
	r.Detail = fmt.Sprintf(format, args...)
}

// errDNS marks a failed lookup (the dialer resolves names itself).
var errDNS = errors.New("dns lookup failed")

// errRateLimited marks a domain whose rate limit would outlast the timeout.
var errRateLimited = errors.New("domain rate limit would outlast the timeout")

// classify maps a transport error to its reason.
func classify(err error) Reason {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ssrf.ErrProhibitedIP), errors.Is(err, ssrf.ErrProhibitedPort),
		errors.Is(err, ssrf.ErrProhibitedNetwork), errors.Is(err, ssrf.ErrInvalidHostPort):
		return ReasonBlocked
	case errors.Is(err, errRateLimited):
		return ReasonRateLimited
	case errors.Is(err, errDNS), errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonConnect
}
