package excerpt_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tgflow/tgflow/internal/excerpt"
)

func TestCut(t *testing.T) {
	long := strings.Repeat("слово ", 100) + "цель " + strings.Repeat("word ", 100)
	long = strings.TrimSpace(long)
	rs := []rune(long)
	first := strings.Index(long, "цель")
	first = utf8.RuneCountInString(long[:first])

	text, start, end, shift := excerpt.Cut(rs, first)
	if !strings.HasPrefix(text, "…") || !strings.HasSuffix(text, "…") {
		t.Errorf("a window inside the text is not marked as cut on both sides: %q", text)
	}
	if first-start > excerpt.Lead || start > first {
		t.Errorf("window starts at %d, the highlight at %d: more than %d before it", start, first, excerpt.Lead)
	}
	if n := end - start; n > excerpt.Runes {
		t.Errorf("window of %d code points, at most %d", n, excerpt.Runes)
	}
	if rs[start-1] != ' ' || (end < len(rs) && rs[end] != ' ') {
		t.Errorf("window [%d,%d) does not begin and end at words", start, end)
	}
	if got := string([]rune(text)[first+shift : first+shift+4]); got != "цель" {
		t.Errorf("the highlight is at %q in the excerpt, want цель", got)
	}

	short := []rune("short text")
	if text, start, end, _ := excerpt.Cut(short, -1); text != "short text" || start != 0 || end != len(short) {
		t.Errorf("a short text is cut: %q [%d,%d)", text, start, end)
	}
}
