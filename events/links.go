package events

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// NormalizeLink returns the one canonical form of a link, shared by ingest (Post.Links,
// entity URLs) and the enricher (fetch and cache key), so that two spellings of one page are
// one page everywhere:
//
//   - a bare link ("example.com/x") gets the scheme "http://", as Telegram clients do;
//     mailto:, tel: and tg: links, other schemes and links that do not parse are returned
//     trimmed and otherwise untouched;
//   - scheme and host in lower case; the host in IDNA ASCII form (xn--…), trailing dot
//     removed; IP literals in their canonical spelling; the default port (80 for http, 443
//     for https) removed;
//   - user name and password removed: a credential never reaches a fact or a cache key;
//   - the fragment removed;
//   - percent-encoding normalised: escapes of unreserved ASCII characters and of printable
//     non-ASCII text are decoded (the path reads "/статья", not "/%D1%81…"), every other
//     escape kept with upper-case hex, characters a URL may not hold literally are escaped;
//     "." and ".." path segments resolved;
//   - trailing slash: a path that is only "/" is dropped ("https://example.com/" →
//     "https://example.com"); any other trailing slash is kept, because "/a/" and "/a"
//     may be different resources;
//   - tracking parameters removed (utm_*, fbclid, gclid, yclid and the others in
//     trackingParams), empty parameters dropped, and the rest sorted by name; the values of
//     a repeated name keep their order; an empty query drops the "?".
//
// NormalizeLink is idempotent: NormalizeLink(NormalizeLink(s)) == NormalizeLink(s).
func NormalizeLink(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if !strings.Contains(s, "://") {
		lower := strings.ToLower(s)
		for _, scheme := range []string{"mailto:", "tel:", "tg:"} {
			if strings.HasPrefix(lower, scheme) {
				return s
			}
		}
		s = "http://" + s
	}
	if c, ok := canonicalWebURL(s); ok {
		return c
	}
	return s
}

// IsWebLink reports whether u is an http(s) link: the only kind Post.Links keeps, since
// the enricher fetches them.
func IsWebLink(u string) bool {
	lower := strings.ToLower(u)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}

// telegramHosts open Telegram itself (channels, posts, invites, bots), not a web page with
// an article, so the enricher skips them. telegram.org and telegra.ph are ordinary web sites
// with readable pages and are fetched like any other.
var telegramHosts = []string{"t.me", "telegram.me", "telegram.dog"}

// IsTelegramLink reports whether u leads into Telegram: a tg: link, or a link to t.me,
// telegram.me, telegram.dog or one of their subdomains (username.t.me).
func IsTelegramLink(u string) bool {
	n := NormalizeLink(u)
	if strings.HasPrefix(strings.ToLower(n), "tg:") {
		return true
	}
	if !IsWebLink(n) {
		return false
	}
	p, err := url.Parse(n)
	if err != nil {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(p.Hostname()), ".")
	for _, h := range telegramHosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

// ExtractLinks returns the web links of a post, normalised and deduplicated in order of
// first appearance: the URLs of its entities first, then the known links (Post.Links,
// PostTagged.Links — re-normalised, since older facts were written by an older rule), then
// links found in the plain text. Text links are those starting with http:// or https://
// (any case) or www.; a bare domain ("example.com") in text is not taken, since words like
// "file.txt" or "Node.js" would be. Trailing punctuation and unbalanced closing brackets are
// not part of a text link.
func ExtractLinks(text string, entities []Entity, known ...string) []string {
	var out []string
	seen := make(map[string]bool)
	add := func(raw string) {
		u := NormalizeLink(raw)
		if u == "" || !IsWebLink(u) || seen[u] || !utf8.ValidString(u) {
			return
		}
		seen[u] = true
		out = append(out, u)
	}
	for _, e := range entities {
		if e.URL != "" {
			add(e.URL)
		}
	}
	for _, k := range known {
		add(k)
	}
	for _, l := range textLinks(text) {
		add(l)
	}
	return out
}

// textLinks finds link candidates in plain text.
func textLinks(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		start := -1
		switch {
		case hasPrefixASCIIFold(text[i:], "http://") || hasPrefixASCIIFold(text[i:], "https://"):
			start = i
		case hasPrefixASCIIFold(text[i:], "www.") && linkBoundary(text, i):
			start = i
		}
		if start < 0 {
			_, n := utf8.DecodeRuneInString(text[i:])
			i += n
			continue
		}
		end := start
		for end < len(text) {
			r, n := utf8.DecodeRuneInString(text[end:])
			if r == utf8.RuneError && n <= 1 || unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(`<>"«»“”`, r) {
				break
			}
			end += n
		}
		cand := trimLinkTail(text[start:end])
		if len(cand) > len("https://") || hasPrefixASCIIFold(cand, "www.") && len(cand) > len("www.x") {
			out = append(out, cand)
		}
		i = max(end, start+1)
	}
	return out
}

// hasPrefixASCIIFold reports whether s starts with prefix (lower-case ASCII), ignoring the
// case of ASCII letters only. Positions in s stay positions in the text: lower-casing the
// whole text instead changes byte lengths ("\u212A", the Kelvin sign, becomes "k"), and
// indexes into it then point elsewhere or past its end.
func hasPrefixASCIIFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// linkBoundary reports whether a "www." at i starts a word.
func linkBoundary(text string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	return !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".@/-_", r))
}

// trimLinkTail drops sentence punctuation after a link and closing brackets that have no
// opening one inside it ("(see https://x.org/a)" → "https://x.org/a", but
// "https://en.wikipedia.org/wiki/Go_(language)" keeps its bracket).
func trimLinkTail(s string) string {
	for s != "" {
		r, n := utf8.DecodeLastRuneInString(s)
		switch {
		case strings.ContainsRune(".,;:!?'…。，", r):
			s = s[:len(s)-n]
		case r == ')' && strings.Count(s, "(") < strings.Count(s, ")"),
			r == ']' && strings.Count(s, "[") < strings.Count(s, "]"),
			r == '}' && strings.Count(s, "{") < strings.Count(s, "}"):
			s = s[:len(s)-n]
		default:
			return s
		}
	}
	return s
}

// trackingParams are query parameters that only identify a campaign, a click or a mail
// recipient, never the page: removed so that one page shared from two campaigns is one
// page. Names are compared in lower case; every "utm_" name is a tracker too.
var trackingParams = map[string]bool{
	"fbclid": true, "gclid": true, "gclsrc": true, "dclid": true, "gbraid": true, "wbraid": true,
	"msclkid": true, "yclid": true, "ysclid": true, "_openstat": true, "twclid": true,
	"ttclid": true, "li_fat_id": true, "igshid": true, "igsh": true, "srsltid": true,
	"mc_cid": true, "mc_eid": true, "_hsenc": true, "_hsmi": true, "__hstc": true,
	"__hssc": true, "__hsfp": true, "hsctatracking": true, "mkt_tok": true,
	"oly_anon_id": true, "oly_enc_id": true, "vero_id": true, "vero_conv": true,
	"wickedid": true, "rb_clickid": true, "s_kwcid": true, "ef_id": true,
}

// IsTrackingParam reports whether a query parameter name is a tracker NormalizeLink removes.
func IsTrackingParam(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "utm_") || trackingParams[n]
}

// idnaProfile maps a host for lookup like a browser (UTS #46, non-transitional) but accepts
// the underscores that real host names carry.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false), idna.BidiRule())

// canonicalWebURL applies NormalizeLink's rules to an http(s) URL; ok is false for other
// schemes and for what does not parse. The path and query are taken from s as written (not
// from url.URL, whose decoded Path loses the difference between "/" and "%2F").
func canonicalWebURL(s string) (string, bool) {
	i := strings.Index(s, "://")
	if i < 0 {
		return "", false
	}
	scheme := strings.ToLower(s[:i])
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, rest := rest[:end], rest[end:]
	if j := strings.IndexByte(rest, '#'); j >= 0 {
		rest = rest[:j]
	}
	rawPath, rawQuery, _ := strings.Cut(rest, "?")
	u, err := url.Parse(scheme + "://" + authority)
	if err != nil || u.Host == "" {
		return "", false
	}
	host, ok := canonicalHost(u.Hostname())
	if !ok {
		return "", false
	}
	if port := u.Port(); port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return "", false
		}
		if !(scheme == "http" && n == 80 || scheme == "https" && n == 443) {
			host += ":" + strconv.FormatUint(n, 10)
		}
	}
	path := removeDotSegments(normalizeEscapes(rawPath, false))
	if path == "/" {
		path = ""
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(path)
	if q := normalizeQuery(rawQuery); q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	return b.String(), true
}

// canonicalHost lower-cases a host, writes a domain in IDNA ASCII form and an IP literal in
// its canonical spelling (IPv6 in brackets).
func canonicalHost(h string) (string, bool) {
	if h == "" {
		return "", false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Is6() {
			return "[" + a.String() + "]", true
		}
		return a.String(), true
	}
	h = strings.TrimRight(h, ".")
	if h == "" {
		return "", false
	}
	a, err := idnaProfile.ToASCII(h)
	if err != nil {
		// A host IDNA rejects (a stray character, an over-long label) is still lower-cased
		// when it is ASCII; a non-ASCII one has no canonical form and stays as given.
		if !isASCII(h) {
			return "", false
		}
		a = strings.ToLower(h)
	}
	if a == "" || strings.ContainsAny(a, "/?#@[]% ") {
		return "", false
	}
	return strings.TrimRight(a, "."), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizeQuery drops empty and tracking parameters and sorts the rest by decoded name,
// keeping the raw spelling of each pair (only its escapes normalised).
func normalizeQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type pair struct{ key, text string }
	var pairs []pair
	for p := range strings.SplitSeq(raw, "&") {
		if p == "" {
			continue
		}
		p = normalizeEscapes(p, true)
		name, _, _ := strings.Cut(p, "=")
		key, err := url.QueryUnescape(name)
		if err != nil {
			key = name
		}
		if IsTrackingParam(key) {
			continue
		}
		pairs = append(pairs, pair{key: key, text: p})
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return strings.Compare(a.key, b.key) })
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.text)
	}
	return b.String()
}

// normalizeEscapes rewrites the percent-encoding of a path or of one query pair: escapes of
// unreserved characters and runs of escapes forming printable UTF-8 text are decoded;
// other escapes get upper-case hex; a '%' that starts no escape, control and space
// characters, characters URLs may not hold and invalid UTF-8 are escaped. In a query, "&"
// and "=" and "+" decoded from an escape stay escaped, since they would change meaning.
func normalizeEscapes(s string, query bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c == '%' {
			if v, ok := unhex2(s, i); ok {
				if v < utf8.RuneSelf {
					if isUnreserved(v) {
						b.WriteByte(v)
					} else {
						writeEscape(&b, v)
					}
					i += 3
					continue
				}
				i = writeHighRun(&b, s, i)
				continue
			}
			writeEscape(&b, '%')
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			i = writeHighRun(&b, s, i)
			continue
		}
		if mustEscape(c, query) {
			writeEscape(&b, c)
		} else {
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}

// writeHighRun writes the run of bytes ≥ 0x80 starting at s[i], each escaped ("%C2") or
// raw, and returns where the run ends. The run is read as one byte string whichever form
// each byte came in: whole printable runes are written raw, every other byte escaped. So
// an escaped byte next to a raw one (%C2 then a raw 0xBC) gives the same result as both
// escaped or both raw, and normalising the result again changes nothing.
func writeHighRun(b *strings.Builder, s string, i int) int {
	var raw []byte
	for i < len(s) {
		if s[i] == '%' {
			w, ok := unhex2(s, i)
			if !ok || w < utf8.RuneSelf {
				break
			}
			raw = append(raw, w)
			i += 3
			continue
		}
		if s[i] < utf8.RuneSelf {
			break
		}
		raw = append(raw, s[i])
		i++
	}
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		if r != utf8.RuneError && unicode.IsPrint(r) && !unicode.IsSpace(r) {
			b.Write(raw[:n])
		} else {
			for _, x := range raw[:n] {
				writeEscape(b, x)
			}
		}
		raw = raw[n:]
	}
	return i
}

// unhex2 decodes the escape "%XX" at s[i] (isHex and unhex live in codec.go).
func unhex2(s string, i int) (byte, bool) {
	if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
		return 0, false
	}
	return unhex(s[i+1])<<4 | unhex(s[i+2]), true
}

func writeEscape(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// mustEscape reports whether an ASCII character may not appear literally in a path or
// query (RFC 3986 allows unreserved, sub-delims, ":", "@", "/" and, in a query, "?").
func mustEscape(c byte, query bool) bool {
	if isUnreserved(c) {
		return false
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return false
	case '?':
		return !query
	}
	return true
}

// removeDotSegments resolves "." and ".." segments (RFC 3986, section 5.2.4).
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}
