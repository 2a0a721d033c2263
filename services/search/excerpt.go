package search

import (
	"strings"
	"unicode"

	window "github.com/tgflow/tgflow/internal/excerpt"
	"github.com/tgflow/tgflow/services/embed/hashing/textnorm"
)

// ExcerptRunes is the length of an excerpt, at most (plus the ellipses).
const ExcerptRunes = window.Runes

// Terms are the stems of a query's words, stop words left out: a word of a post matches
// when its stem is one of them (the same folding and Snowball stemmers as the tagger, so
// "релизы" matches "релиз" and "releases" matches "release").
type Terms map[string]bool

// QueryTerms returns the terms of a query text.
func QueryTerms(q string) Terms {
	t := Terms{}
	for _, tok := range textnorm.Tokenize(q) {
		if textnorm.IsStop(tok.Text) {
			continue
		}
		t[textnorm.Stem(tok)] = true
	}
	return t
}

// word is one word of a text, in code points.
type word struct{ start, end int }

// words returns the letter-and-digit runs of rs, a hyphen or apostrophe between two runs
// joining them (as textnorm does).
func words(rs []rune) []word {
	var out []word
	isW := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }
	for i := 0; i < len(rs); {
		if !isW(rs[i]) {
			i++
			continue
		}
		j := i
		for j < len(rs) && (isW(rs[j]) || (rs[j] == '-' || rs[j] == '\'') && j+1 < len(rs) && isW(rs[j+1]) && j > i) {
			j++
		}
		out = append(out, word{i, j})
		i = j
	}
	return out
}

// matches returns the spans of rs whose words match terms.
func (t Terms) matches(rs []rune) []Span {
	if len(t) == 0 {
		return nil
	}
	var out []Span
	for _, w := range words(rs) {
		toks := textnorm.Tokenize(string(rs[w.start:w.end]))
		if len(toks) != 1 {
			continue
		}
		if t[textnorm.Stem(toks[0])] {
			out = append(out, Span{w.start, w.end})
		}
	}
	return out
}

// Excerpt cuts a window of text around the first word matching terms (the start of the text
// when none matches) and returns it with the matching words marked. White space runs are
// collapsed to one space; a cut is marked with "…".
func Excerpt(text string, terms Terms) (string, []Span) {
	rs := []rune(strings.Join(strings.Fields(text), " "))
	spans := terms.matches(rs)
	first := -1
	if len(spans) > 0 {
		first = spans[0].Start
	}
	text, start, end, shift := window.Cut(rs, first)
	var out []Span
	for _, s := range spans {
		if s.Start >= start && s.End <= end {
			out = append(out, Span{s.Start + shift, s.End + shift})
		}
	}
	return text, out
}

// Segment is a part of an excerpt, highlighted or not: what a page or a terminal renders.
type Segment struct {
	Text string
	Mark bool
}

// Segments splits an excerpt at its highlights. Spans out of range or overlapping are
// ignored.
func Segments(excerpt string, spans []Span) []Segment {
	rs := []rune(excerpt)
	var out []Segment
	at := 0
	for _, s := range spans {
		if s.Start < at || s.End > len(rs) || s.Start >= s.End {
			continue
		}
		if s.Start > at {
			out = append(out, Segment{Text: string(rs[at:s.Start])})
		}
		out = append(out, Segment{Text: string(rs[s.Start:s.End]), Mark: true})
		at = s.End
	}
	if at < len(rs) {
		out = append(out, Segment{Text: string(rs[at:])})
	}
	return out
}
