// Package excerpt cuts the window of a post's text that a search result shows: the one rule
// for Postgres's highlighted hits and for hits of other backends highlighted by query terms.
package excerpt

import "strings"

const (
	// Runes is the length of an excerpt, at most (plus the ellipses).
	Runes = 240
	// Lead is how much text an excerpt keeps before its first highlighted word.
	Lead = 60
)

// Cut returns the window of rs (white space already collapsed to single spaces) around the
// code point first (the first highlighted one; -1 or 0 for the start of the text): it begins
// at a word at most Lead code points before first and ends at a word within Runes, and a cut
// is marked with "…". A code point i of rs with start <= i < end is at i+shift in text.
func Cut(rs []rune, first int) (text string, start, end, shift int) {
	if first > Lead {
		start = first - Lead
		for k := start; k < first; k++ { // start at a word: after the next space
			if rs[k] == ' ' {
				start = k + 1
				break
			}
		}
	}
	end = min(len(rs), start+Runes)
	if end < len(rs) {
		// End at a word: back to the last space, unless that loses too much.
		for k := end; k > start+Runes*3/4; k-- {
			if rs[k] == ' ' {
				end = k
				break
			}
		}
	}
	var b strings.Builder
	shift = -start
	if start > 0 {
		b.WriteString("…")
		shift++
	}
	b.WriteString(string(rs[start:end]))
	if end < len(rs) {
		b.WriteString("…")
	}
	return b.String(), start, end, shift
}
