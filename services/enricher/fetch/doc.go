// Package fetch is the enricher's web client: it fetches the pages a post links to, safely,
// politely and once, and extracts their readable text. The enricher stage calls it; it
// never sees NATS subjects or facts other than events.Page.
//
// What a caller relies on:
//
//   - Fetch never panics and never runs longer than Config.Timeout (robots.txt, rate-limit
//     wait, redirects, body and text extraction included), plus at most 2s to store the
//     result in the Cache: every skip or failure is a Result with a typed Reason (ReasonDNS,
//     ReasonTimeout, ReasonBlocked, ReasonTooLarge, ReasonContentType, ReasonRobots,
//     ReasonHTTPStatus, …), never an error. Its error is non-nil only when the caller's own
//     context ended first (the stage is stopping: the input must be redelivered, not
//     recorded as failed).
//   - Result.Page() is the events.Page the posts.enriched fact records; a failure is
//     recorded as Page.Error = "<reason>: <detail>".
//   - Links are normalised with events.NormalizeLink, the rule ingest uses; Telegram links
//     and links outside the domain policy are skipped without any network traffic.
//   - The SSRF guard (code.dny.dev/ssrf) runs as net.Dialer.Control, after DNS and before
//     connect, for every connection: the first request, each redirect, robots.txt, and each
//     address a DNS answer gives. Loopback, private, link-local (cloud metadata), CGNAT,
//     multicast, reserved and IPv6 ULA/non-global addresses are refused unless
//     Config.AllowCIDRs allows them; only Config.Ports may be dialled. No proxy is used.
//   - robots.txt (github.com/temoto/robotstxt, cached per origin) is obeyed for the agent
//     "tgflow"; requests are rate limited per registrable domain.
//   - One fetch serves every caller asking for the same normalised URL: concurrent callers
//     share one request, and the Cache serves later ones until the entry expires.
package fetch
