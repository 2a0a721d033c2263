package tagger_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/tagger"
)

// post is one fixture of testdata/tagger/posts.json: a post and the topic it is about.
type post struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	Text  string `json:"text"`
}

func loadPosts(t testing.TB) []post {
	t.Helper()
	b, err := os.ReadFile("../../testdata/tagger/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	var posts []post
	if err := json.Unmarshal(b, &posts); err != nil {
		t.Fatal(err)
	}
	if len(posts) < 30 {
		t.Fatalf("only %d fixture posts", len(posts))
	}
	return posts
}

// corpusDF is a DF store that observed every fixture post, in order.
func corpusDF(t testing.TB) *tagger.MemoryDF {
	t.Helper()
	df := tagger.NewMemoryDF()
	for i, p := range loadPosts(t) {
		df.Observe(uint64(i+1), tagger.Terms(p.Text))
	}
	return df
}

func newTagger(t testing.TB, cfg tagger.Config, df tagger.DF) *tagger.Tagger {
	t.Helper()
	tg, err := tagger.New(cfg, df)
	if err != nil {
		t.Fatalf("tagger.New: %v", err)
	}
	return tg
}

func tag(t testing.TB, tg *tagger.Tagger, in tagger.Input) tagger.Result {
	t.Helper()
	res, err := tg.Tag(context.Background(), in)
	if err != nil {
		t.Fatalf("Tag(%q): %v", in.Text, err)
	}
	return res
}

func names(tags []events.Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.Name
	}
	return out
}

const goRelease = "Вышел Go 1.23: новые итераторы range-over-func, улучшения в стандартной библиотеке и опциональная телеметрия. Команда Go рекомендует обновиться всем разработчикам."

func TestGoReleasePostGetsAGoTag(t *testing.T) {
	tests := []struct {
		name  string
		in    tagger.Input
		want  string
		first bool // the tag must be the first one
	}{
		{"russian, no hashtag", tagger.Input{Text: goRelease}, "go", false},
		{"russian, one mention of Go", tagger.Input{Text: "Вышел Go 1.23: новые итераторы, улучшения в стандартной библиотеке и опциональная телеметрия."}, "go", false},
		{"hashtag in the text", tagger.Input{Text: goRelease + " #golang"}, "golang", true},
		{"hashtag list", tagger.Input{Text: goRelease, Hashtags: []string{"#GoLang"}}, "golang", true},
		{"english", tagger.Input{Text: "Go 1.23 is released: range-over-func iterators land in the standard library, and the Go team asks everyone to upgrade."}, "go", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTagger(t, tagger.Config{}, corpusDF(t))
			res := tag(t, tg, tc.in)
			got := names(res.Tags)
			t.Logf("tags %v", res.Tags)
			if !slices.Contains(got, tc.want) {
				t.Fatalf("tags %q lack %q", got, tc.want)
			}
			if tc.first && got[0] != tc.want {
				t.Fatalf("tags %q: %q is not first", got, tc.want)
			}
			if !slices.Contains(got, "go") && !slices.Contains(got, "golang") {
				t.Fatalf("tags %q have neither go nor golang", got)
			}
		})
	}
}

func TestCapitalisedWordsInsideASentenceRankFirst(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, tagger.NewMemoryDF())
	// Every word occurs once; only "Kubernetes" is capitalised inside a sentence, and
	// "Сегодня" opens one (a capital there says nothing).
	res := tag(t, tg, tagger.Input{Text: "Сегодня обновили кластер: теперь Kubernetes управляет сервисами и очередями задач."})
	if got := names(res.Tags); len(got) == 0 || got[0] != "kubernetes" {
		t.Fatalf("tags %q: want kubernetes first", got)
	}
	res = tag(t, tg, tagger.Input{Text: "Сегодня обновили кластер: теперь NASA управляет сервисами и очередями задач."})
	if got := names(res.Tags); len(got) == 0 || got[0] != "nasa" {
		t.Fatalf("tags %q: want the acronym nasa first", got)
	}
}

func TestEnglishKeywords(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, corpusDF(t))
	res := tag(t, tg, tagger.Input{Text: "Inflation is cooling: inflation fell to 2.9% in November, and the central bank said inflation expectations are anchored. Bakers and farmers welcome the news."})
	got := names(res.Tags)
	if len(got) != 5 {
		t.Fatalf("tags %q: want 5", got)
	}
	if got[0] != "inflation" {
		t.Fatalf("tags %q: want inflation (three times) first", got)
	}
}

func TestStopWordsNumbersAndLinksAreNeverTags(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, tagger.NewMemoryDF())
	res := tag(t, tg, tagger.Input{Text: "И это всё, что было в 2024 году, и the of and is this that. Смотрите https://example.com/news и @channel_name, пишите на a@b.ru. 100500 1.23"})
	for _, name := range names(res.Tags) {
		switch name {
		case "и", "это", "все", "что", "было", "в", "the", "of", "and", "is", "this", "that", "2024", "100500", "example", "com", "news", "channel_name", "https":
			t.Errorf("tag %q should have been dropped", name)
		}
	}
	if got := names(res.Tags); !slices.Contains(got, "году") && !slices.Contains(got, "смотрите") {
		t.Errorf("tags %q lack the content words", got)
	}
}

func TestYoAndYeAreOneKeyword(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, tagger.NewMemoryDF())
	res := tag(t, tg, tagger.Input{Text: "Ёлка на площади, ёлка в парке и елка во дворе: город готовится к празднику заранее."})
	got := names(res.Tags)
	if len(got) == 0 || got[0] != "елка" {
		t.Fatalf("tags %q: want елка (three times, ё folded) first", got)
	}
	for _, n := range got {
		if strings.ContainsRune(n, 'ё') {
			t.Errorf("tag %q keeps ё", n)
		}
	}
}

func TestKeywordIsShownInItsMostFrequentForm(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"most frequent", "Итераторы упростили код. Итераторы теперь в стандарте, и итератор можно вернуть из функции.", "итераторы"},
		{"tie goes to the shorter", "Итераторы упростили код, и итератор теперь можно вернуть из функции.", "итератор"},
		{"tie of equal lengths goes to the first in byte order", "Библиотеке не хватало функций, и библиотека обновилась.", "библиотека"},
		{"english plural", "Iterators are here: iterators replace callbacks; an iterator is a function.", "iterators"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTagger(t, tagger.Config{}, tagger.NewMemoryDF())
			got := names(tag(t, tg, tagger.Input{Text: tc.text}).Tags)
			if len(got) == 0 || got[0] != tc.want {
				t.Fatalf("tags %q: want %q first", got, tc.want)
			}
		})
	}
}

func TestDocumentFrequencyRanksRareWordsAboveCommonOnes(t *testing.T) {
	text := "Рынок и блокчейн: аналитики обсуждают перспективы."
	// Without document frequencies, equal counts keep the order of first occurrence.
	cold := names(tag(t, newTagger(t, tagger.Config{}, tagger.NewMemoryDF()), tagger.Input{Text: text}).Tags)
	if i, j := slices.Index(cold, "рынок"), slices.Index(cold, "блокчейн"); i < 0 || j < 0 || i > j {
		t.Fatalf("cold tags %q: want рынок before блокчейн", cold)
	}
	// "рынок" is in every observed post, "блокчейн" in one.
	df := tagger.NewMemoryDF()
	for i := range 50 {
		stems := tagger.Terms("Рынок сегодня спокоен, торги идут вяло.")
		if i == 7 {
			stems = tagger.Terms("Рынок и блокчейн.")
		}
		df.Observe(uint64(i+1), stems)
	}
	warm := names(tag(t, newTagger(t, tagger.Config{}, df), tagger.Input{Text: text}).Tags)
	if i, j := slices.Index(warm, "рынок"), slices.Index(warm, "блокчейн"); j < 0 || (i >= 0 && i < j) {
		t.Fatalf("tags %q: want блокчейн before рынок (or рынок gone)", warm)
	}
}

func TestHashtagsComeFirstNormalisedAndDeduplicated(t *testing.T) {
	text := "Новый релиз #GoLang и #Релизы: Golang стал быстрее. #golang"
	runes := []rune(text)
	start := slices.Index(runes, '#')
	in := tagger.Input{
		Text:     text,
		Hashtags: []string{"#Новости", " golang "},
		Entities: []events.Entity{{Type: "hashtag", Offset: start, Length: len([]rune("#GoLang"))}, {Type: "bold", Offset: 0, Length: 5}},
	}
	res := tag(t, newTagger(t, tagger.Config{}, tagger.NewMemoryDF()), in)
	got := names(res.Tags)
	want := []string{"новости", "golang", "релизы"}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("tags %q: want %q first", got, want)
	}
	for _, tg := range res.Tags[:len(want)] {
		if tg.Score != 1 {
			t.Errorf("hashtag %q score %v, want 1", tg.Name, tg.Score)
		}
	}
	// "Golang" in the text is the hashtag's stem: not repeated as a keyword.
	if n := strings.Count(strings.Join(got, " "), "golang"); n != 1 {
		t.Errorf("tags %q: golang %d times", got, n)
	}
	// Out-of-range entities are ignored, not a panic.
	in.Entities = append(in.Entities, events.Entity{Type: "hashtag", Offset: 1000, Length: 3})
	tag(t, newTagger(t, tagger.Config{}, tagger.NewMemoryDF()), in)
}

func TestAtMostMaxTagsEvenWithManyHashtags(t *testing.T) {
	in := tagger.Input{Text: "#альфа #бета #гамма #дельта #эпсилон #дзета #омега и длинный текст про разные вещи, чтобы слова тоже были."}
	got := names(tag(t, newTagger(t, tagger.Config{}, tagger.NewMemoryDF()), in).Tags)
	if want := []string{"альфа", "бета", "гамма", "дельта", "эпсилон"}; !slices.Equal(got, want) {
		t.Fatalf("tags %q, want %q", got, want)
	}
	got = names(tag(t, newTagger(t, tagger.Config{MaxTags: 2}, tagger.NewMemoryDF()), tagger.Input{Text: goRelease}).Tags)
	if len(got) != 2 {
		t.Fatalf("MaxTags 2: tags %q", got)
	}
}

func TestShortTextWithoutMediaGetsHashtagsOnly(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, tagger.NewMemoryDF())
	tests := []struct {
		name     string
		in       tagger.Input
		want     []string
		keywords bool
	}{
		{"empty", tagger.Input{}, []string{}, false},
		{"short, no hashtags", tagger.Input{Text: "Доброе утро, друзья!"}, []string{}, false},
		{"short with a hashtag", tagger.Input{Text: "Доброе утро #утро"}, []string{"утро"}, false},
		{"stop-word and one-letter hashtags dropped", tagger.Input{Text: "#я #и #the #ок", Hashtags: []string{"#x", "это"}}, []string{"ок"}, false},
		{"short caption of a photo", tagger.Input{Text: "Закат над Невой", HasMedia: true}, nil, true},
		{"short, vision text", tagger.Input{Text: "Смотрите", VisionText: []string{"Распродажа ноутбуков"}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := tag(t, tg, tc.in)
			if res.Tags == nil {
				t.Fatal("Tags is nil: an empty result must still be a list")
			}
			got := names(res.Tags)
			if tc.keywords {
				if len(got) == 0 {
					t.Fatalf("no keywords for %q", tc.in.Text)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("tags %q, want %q", got, tc.want)
			}
			if len(res.Topics) != 0 {
				t.Fatalf("topics %q for a short text", res.Topics)
			}
		})
	}
}

func TestVisionTextAddsKeywordsWithLessWeight(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, tagger.NewMemoryDF())
	in := tagger.Input{Text: "Ноутбуки поступили в продажу, ноутбуки уже ждут.", HasMedia: true,
		VisionText: []string{"Витрина с ноутбуками и ценниками", "РАСПРОДАЖА"}}
	got := names(tag(t, tg, in).Tags)
	// Post words first (ноутбуки also gains from the vision text), then one vision word.
	want := []string{"ноутбуки", "поступили", "продажу", "ждут", "витрина"}
	if !slices.Equal(got, want) {
		t.Fatalf("tags %q, want %q", got, want)
	}
}

// TestLocalTaggerGivesNoTopics: topics come from the post's embedding, which the embedder
// stage computes; the local tagger leaves them (and their source) empty.
func TestLocalTaggerGivesNoTopics(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, corpusDF(t))
	for _, p := range loadPosts(t) {
		if res := tag(t, tg, tagger.Input{Text: p.Text, VisionText: []string{p.Text}}); len(res.Topics) != 0 || res.TopicsSource != "" {
			t.Errorf("%s: topics %q from %q, want none", p.Name, res.Topics, res.TopicsSource)
		}
	}
}

func TestResultNamesTheTagger(t *testing.T) {
	res := tag(t, newTagger(t, tagger.Config{}, tagger.NewMemoryDF()), tagger.Input{Text: goRelease})
	if res.Provider != "local" || res.Model != "tfidf-snowball-v1" {
		t.Fatalf("provider %q model %q", res.Provider, res.Model)
	}
}

func TestNewRejectsBadConfigAndNilDependencies(t *testing.T) {
	df := tagger.NewMemoryDF()
	if _, err := tagger.New(tagger.Config{}, nil); !errors.Is(err, tagger.ErrNilDependency) {
		t.Errorf("nil DF: %v", err)
	}
	tests := []struct {
		name string
		cfg  tagger.Config
	}{
		{"too many tags", tagger.Config{MaxTags: 6}},
		{"negative tags", tagger.Config{MaxTags: -1}},
		{"vision weight", tagger.Config{VisionWeight: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tagger.New(tc.cfg, df); !errors.Is(err, tagger.ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
		})
	}
}

func TestNormalizeTag(t *testing.T) {
	tests := []struct{ in, want string }{
		{"#GoLang", "golang"},
		{"  ##Ёлка ", "елка"},
		{"и\u0306од", "йод"},
		{"Machine Learning", "machine_learning"},
		{"#", ""},
		{"!!!", ""},
		{strings.Repeat("x", 49), ""},
	}
	for _, tc := range tests {
		if got := tagger.NormalizeTag(tc.in); got != tc.want {
			t.Errorf("NormalizeTag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTermsAreDistinctContentStems(t *testing.T) {
	got := tagger.Terms("Итераторы и итератор: новые итераторы в Go #golang https://go.dev")
	want := []string{"итератор", "нов", "go"}
	if !slices.Equal(got, want) {
		t.Fatalf("Terms = %q, want %q", got, want)
	}
}
