package albums

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
)

// summarise keeps what an album summary needs of one post's vision result.
func (a *Assembler) summarise(p *events.PostVisionAnalyzed) *vision {
	v := &vision{Rev: p.Rev}
	var ocr []string
	for _, it := range p.Items {
		if it.Error == "" && it.Reason == "" {
			v.Analysed = true
		}
		for _, l := range slices.Concat(it.Labels, it.Objects) {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(v.Labels, l) {
				v.Labels = append(v.Labels, l)
			}
		}
		if d := strings.TrimSpace(it.Description); d != "" {
			v.Descriptions = append(v.Descriptions, d)
		}
		if t := strings.TrimSpace(it.OCRText); t != "" {
			ocr = append(ocr, t)
		}
	}
	v.OCR = truncate(strings.Join(ocr, "\n"), a.cfg.MaxOCRChars)
	return v
}

// summary aggregates the album's items into its albums.assembled payload.
func (a *Assembler) summary(al *album, outcome string, at time.Time) events.AlbumAssembled {
	p := events.AlbumAssembled{
		ChannelID:  al.ChannelID,
		GroupedID:  preferredGroupedID(al.GroupedIDs),
		GroupedIDs: slices.Clone(al.GroupedIDs),
		Outcome:    outcome,
		At:         at,
		ItemCount:  len(al.Items),
		Caption:    al.Caption,
		PostedAt:   al.PostedAt,
	}
	counts := map[string]int{}
	var labels, ocr []string
	for _, it := range al.Items {
		p.MessageIDs = append(p.MessageIDs, it.MessageID)
		if !it.done() {
			p.Missing = append(p.Missing, it.MessageID)
		}
		v := it.Vision
		if v == nil {
			continue
		}
		if p.CoverMessageID == 0 && v.Analysed {
			p.CoverMessageID = it.MessageID
		}
		for _, l := range v.Labels {
			if counts[l] == 0 {
				labels = append(labels, l)
			}
			counts[l]++
		}
		p.Descriptions = append(p.Descriptions, v.Descriptions...)
		if v.OCR != "" {
			ocr = append(ocr, v.OCR)
		}
	}
	if p.CoverMessageID == 0 && len(al.Items) > 0 {
		p.CoverMessageID = al.Items[0].MessageID
	}
	// The most frequent labels first; ties in order of first appearance (stable sort).
	slices.SortStableFunc(labels, func(x, y string) int { return cmp.Compare(counts[y], counts[x]) })
	if len(labels) > a.cfg.MaxLabels {
		labels = labels[:a.cfg.MaxLabels]
	}
	p.Labels = labels
	p.OCRText = truncate(strings.Join(ocr, "\n\n"), a.cfg.MaxOCRChars)
	p.Summary = summaryText(al.Caption, p.Descriptions)
	return p
}

// preferredGroupedID is Telegram's real (positive) grouped id when known, else the
// export's synthetic one.
func preferredGroupedID(ids []int64) int64 {
	best := int64(0)
	for _, id := range ids {
		if best == 0 || (id > 0 && best < 0) {
			best = id
		}
	}
	return best
}

// maxSummary bounds the one-line summary.
const maxSummary = 1000

// summaryText is the caption followed by the image descriptions.
func summaryText(caption string, descriptions []string) string {
	parts := make([]string, 0, len(descriptions)+1)
	if c := strings.TrimSpace(caption); c != "" {
		parts = append(parts, c)
	}
	parts = append(parts, descriptions...)
	return truncate(strings.Join(parts, " · "), maxSummary)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
