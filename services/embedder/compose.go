package embedder

import (
	"strings"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
)

// Bounds of each part of the embedded text, in runes. The post's own words come first and
// get the most room; a long linked article must not drown a short post.
const (
	maxPostRunes    = 2000
	maxVisionRunes  = 600
	maxPagesRunes   = 1200
	maxExcerptRunes = 300
)

// Compose is the text embedded for a post revision: its text, tags, what its images say,
// and the titles and excerpts of the pages it links to, each bounded.
func Compose(p *events.PostEnriched) string {
	var b strings.Builder
	part := func(s string, max int) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(truncate(s, max))
	}
	part(p.Text, maxPostRunes)
	if len(p.Tags) > 0 {
		part(strings.Join(p.Tags, ", "), 200)
	}
	part(p.Vision, maxVisionRunes)
	budget := maxPagesRunes
	for _, pg := range p.Pages {
		if pg.Error != "" || budget <= 0 {
			continue
		}
		s := strings.TrimSpace(pg.Title)
		ex := pg.Excerpt
		if ex == "" {
			ex = pg.Text
		}
		if ex = truncate(strings.TrimSpace(ex), maxExcerptRunes); ex != "" {
			if s != "" {
				s += ": "
			}
			s += ex
		}
		s = truncate(s, budget)
		budget -= utf8.RuneCountInString(s)
		part(s, maxPagesRunes)
	}
	return b.String()
}

// truncate cuts s to at most max runes, at a word boundary when one is near.
func truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	i, n := 0, 0
	for i = range s {
		if n == max {
			break
		}
		n++
	}
	cut := s[:i]
	if sp := strings.LastIndexAny(cut, " \n\t"); sp > len(cut)*3/4 {
		cut = cut[:sp]
	}
	return strings.TrimSpace(cut)
}
