package embedder_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embedder"
)

func TestCompose(t *testing.T) {
	long := strings.Repeat("слово ", 2000)
	p := &events.PostEnriched{
		Text:   "Вышел Go 1.23",
		Tags:   []string{"go", "релиз"},
		Vision: "скриншот: range over func",
		Pages: []events.Page{
			{URL: "https://go.dev/blog/go1.23", Domain: "go.dev", Title: "Go 1.23 is released", Excerpt: "Today the Go team is happy to release Go 1.23."},
			{URL: "https://bad.example", Domain: "bad.example", Error: "timeout", Title: "never fetched"},
			{URL: "https://long.example", Domain: "long.example", Title: "Long", Text: long},
		},
	}
	got := embedder.Compose(p)
	for _, want := range []string{"Вышел Go 1.23", "go, релиз", "range over func", "Go 1.23 is released: Today the Go team"} {
		if !strings.Contains(got, want) {
			t.Errorf("composed text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "never fetched") {
		t.Errorf("a failed page's title is embedded:\n%s", got)
	}
	if n := utf8.RuneCountInString(got); n > 2000+200+600+1200+10 {
		t.Errorf("composed text is %d runes: the bounds do not hold", n)
	}
	if !utf8.ValidString(got) {
		t.Error("composed text is not valid UTF-8 (a rune was cut)")
	}
	if again := embedder.Compose(p); again != got {
		t.Error("Compose is not deterministic")
	}
	huge := &events.PostEnriched{Text: long}
	if n := utf8.RuneCountInString(embedder.Compose(huge)); n > 2000 || n < 1500 {
		t.Errorf("a long post composes to %d runes, want about 2000", n)
	}
}
