package textnorm_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/services/embed/hashing/textnorm"
)

func texts(toks []textnorm.Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Text
		if t.Hashtag {
			out[i] = "#" + t.Text
		}
	}
	return out
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"russian and latin", "Вышел Go 1.23: новые итераторы", []string{"вышел", "go", "новые", "итераторы"}},
		{"ё folds to е", "Ёжик ещё пришёл", []string{"ежик", "еще", "пришел"}},
		{"nfd input is composed", "и\u0306од", []string{"йод"}},
		{"hyphenated words stay whole", "какой-то state-of-the-art научно‑технический", []string{"какой-то", "state-of-the-art", "научно-технический"}},
		{"dangling hyphens split", "-вот- и -так", []string{"вот", "так"}},
		{"apostrophes join", "don’t it's", []string{"don't", "it's"}},
		{"hashtags", "#GoLang #ии_2024 #123 # пусто", []string{"#golang", "#ии_2024", "пусто"}},
		{"mentions dropped", "@golang_news пишет: (@user) привет", []string{"пишет", "привет"}},
		{"urls dropped", "см. https://go.dev/blog/go1.23 и www.Example.com/x, t.me/channel ссылки", []string{"см", "ссылки"}},
		{"url after text in one chunk", "ссылка:https://example.com/a", []string{"ссылка"}},
		{"emails dropped", "пишите на mail@example.ru сегодня", []string{"пишите", "на", "сегодня"}},
		{"numbers dropped, alphanumerics kept", "2024 1.23 3:2 gpt-4 m2 5g", []string{"gpt-4", "m2", "5g"}},
		{"one-letter words dropped", "я и a b ок", []string{"ок"}},
		{"slash between words is not a url", "и/или and/or", []string{"или", "and", "or"}},
		{"overlong tokens dropped", strings.Repeat("а", 49) + " норм", []string{"норм"}},
		{"longest tokens kept, four bytes a rune", strings.Repeat("\U0001D41A", 48) + " " + strings.Repeat("Ⱥ", 48), []string{strings.Repeat("\U0001D41A", 48), strings.Repeat("ⱥ", 48)}},
		{"emoji and punctuation", "🔥 Срочно!!! «Новость» — (важно)", []string{"срочно", "новость", "важно"}},
		{"empty", "", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := texts(textnorm.Tokenize(tc.in))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTokenFlags(t *testing.T) {
	// "и" is one letter: dropped.
	toks := textnorm.Tokenize("Вышел Go и NASA. Потом API!\nНовая строка, слово Москва")
	type flags struct {
		text                  string
		cap, upper, sentStart bool
		script                textnorm.Script
	}
	want := []flags{
		{"вышел", true, false, true, textnorm.ScriptCyrillic},
		{"go", true, false, false, textnorm.ScriptLatin},
		{"nasa", true, true, false, textnorm.ScriptLatin},
		{"потом", true, false, true, textnorm.ScriptCyrillic},
		{"api", true, true, false, textnorm.ScriptLatin},
		{"новая", true, false, true, textnorm.ScriptCyrillic},
		{"строка", false, false, false, textnorm.ScriptCyrillic},
		{"слово", false, false, false, textnorm.ScriptCyrillic},
		{"москва", true, false, false, textnorm.ScriptCyrillic},
	}
	if len(toks) != len(want) {
		t.Fatalf("got %d tokens %q, want %d", len(toks), texts(toks), len(want))
	}
	for i, w := range want {
		g := toks[i]
		got := flags{g.Text, g.Cap, g.Upper, g.SentenceStart, g.Script}
		if got != w {
			t.Errorf("token %d: %+v, want %+v", i, got, w)
		}
	}
	if s := textnorm.Tokenize("Goлang")[0].Script; s != textnorm.ScriptMixed {
		t.Errorf("mixed-script token: script %v", s)
	}
}

func TestFold(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"case and ё", "ЁЖИК Ёлка", "ежик елка"},
		{"nfc", "и\u0306", "й"},
		{"apostrophe", "Don’t", "don't"},
		{"hyphens", "научно\u2011технический", "научно-технический"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := textnorm.Fold(tc.in); got != tc.want {
				t.Fatalf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStopWords(t *testing.T) {
	for _, w := range []string{"и", "в", "ее", "еще", "это", "который", "the", "of", "don't", "also"} {
		if !textnorm.IsStop(w) {
			t.Errorf("%q is not a stop word", w)
		}
	}
	for _, w := range []string{"go", "golang", "итератор", "рынок", "bank", "release"} {
		if textnorm.IsStop(w) {
			t.Errorf("%q is a stop word", w)
		}
	}
}

func TestStemByScript(t *testing.T) {
	tests := []struct{ in, want string }{
		{"итераторы", "итератор"},
		{"итераторов", "итератор"},
		{"iterators", "iter"},
		{"released", "releas"},
		{"go", "go"},
		{"научно-технические", "научн-техническ"},
		{"goлang", "goлang"}, // mixed script: left alone
	}
	for _, tc := range tests {
		toks := textnorm.Tokenize(tc.in)
		if len(toks) != 1 {
			t.Fatalf("Tokenize(%q) = %q", tc.in, texts(toks))
		}
		if got := textnorm.Stem(toks[0]); got != tc.want {
			t.Errorf("Stem(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkTokenize(b *testing.B) {
	text := "Вышел Go 1.23: новые итераторы range-over-func, улучшения в стандартной библиотеке и телеметрия. Команда Go рекомендует обновиться. #golang https://go.dev/blog"
	var dst []textnorm.Token
	b.ReportAllocs()
	for b.Loop() {
		dst = textnorm.AppendTokens(dst[:0], text)
	}
}
