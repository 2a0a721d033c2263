package events

import "strings"

// NormalizeLink gives a scheme to a bare link ("example.com/x"), as Telegram clients do
// when they open it, so that the live path and the export importer record the same URL.
func NormalizeLink(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.Contains(s, "://") {
		return s
	}
	lower := strings.ToLower(s)
	for _, scheme := range []string{"mailto:", "tel:", "tg:"} {
		if strings.HasPrefix(lower, scheme) {
			return s
		}
	}
	return "http://" + s
}

// IsWebLink reports whether u is an http(s) link: the only kind Post.Links keeps, since
// the enricher fetches them.
func IsWebLink(u string) bool {
	lower := strings.ToLower(u)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}
