package events

import "unicode/utf8"

// AppendUnique appends s to list unless it is empty, not valid UTF-8 or already there: the
// rule for a post's hashtags, mentions and links, on every ingest path.
func AppendUnique(list []string, s string) []string {
	if s == "" || !utf8.ValidString(s) {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// AppendLink appends a web link (see IsWebLink) once; other links are dropped, since the
// enricher fetches only web pages.
func AppendLink(list []string, u string) []string {
	if !IsWebLink(u) {
		return list
	}
	return AppendUnique(list, u)
}
