package tagger

import (
	"slices"
	"testing"
)

// The DF feed reuses one termScratch for every post it reads: each call must give what
// Terms gives for that text alone, whatever came before.
func TestTermScratchGivesTermsOfEachPostAlone(t *testing.T) {
	texts := []struct {
		name string
		text string
	}{
		{"russian", "Новый релиз Go вышел: релизы Go выходят дважды в год"},
		{"same words again", "Релиз Go, релиз Go и снова релиз"},
		{"english", "Apple ships the new iPhone; Apple and Go"},
		{"empty", ""},
		{"hashtags and stop words", "#go и в на the a #релиз"},
		{"russian again", "Новый релиз Go вышел: релизы Go выходят дважды в год"},
	}
	var sc termScratch
	for _, tt := range texts {
		want := Terms(tt.text)
		got := slices.Clone(sc.terms(tt.text))
		if !slices.Equal(got, want) {
			t.Errorf("%s: scratch terms %q, Terms %q", tt.name, got, want)
		}
	}
}
