package search_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/search"
)

func hit(ch, msg int64, date string) search.Hit {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		panic(err)
	}
	return search.Hit{ChannelID: events.ChannelID(ch), MessageID: msg, Date: d}
}

func keys(hits []search.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Key()
	}
	return out
}

func TestFuseReciprocalRank(t *testing.T) {
	a, b, c, d := hit(1, 1, "2026-01-01"), hit(1, 2, "2026-01-02"), hit(1, 3, "2026-01-03"), hit(2, 4, "2026-01-04")
	tests := []struct {
		name     string
		lists    []search.Ranked
		want     []string
		backends map[string]string
	}{
		{
			name:  "a post both backends found beats each backend's own top hit",
			lists: []search.Ranked{{search.BackendPostgres, []search.Hit{a, b, c}}, {search.BackendQdrant, []search.Hit{d, c, a}}},
			// a: 1/61+1/63, c: 1/63+1/62, d: 1/61, b: 1/62
			want:     []string{"1/1", "1/3", "2/4", "1/2"},
			backends: map[string]string{"1/1": "postgres+qdrant", "1/3": "postgres+qdrant", "2/4": "qdrant", "1/2": "postgres"},
		},
		{
			name:     "one list keeps its order and backend",
			lists:    []search.Ranked{{search.BackendPostgres, nil}, {search.BackendQdrant, []search.Hit{c, a}}},
			want:     []string{"1/3", "1/1"},
			backends: map[string]string{"1/3": "qdrant", "1/1": "qdrant"},
		},
		{
			name:  "equal scores: the better single rank, then the newer post",
			lists: []search.Ranked{{search.BackendPostgres, []search.Hit{a, b}}, {search.BackendQdrant, []search.Hit{d, c}}},
			want:  []string{"2/4", "1/1", "1/3", "1/2"},
		},
		{
			name:  "a post listed twice by one backend counts once",
			lists: []search.Ranked{{search.BackendPostgres, []search.Hit{a, a, b}}, {search.BackendQdrant, []search.Hit{b}}},
			want:  []string{"1/2", "1/1"},
		},
		{name: "nothing", lists: []search.Ranked{{search.BackendPostgres, nil}}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := search.Fuse(tt.lists...)
			if g := strings.Join(keys(got), " "); g != strings.Join(tt.want, " ") {
				t.Fatalf("order %q, want %q", g, strings.Join(tt.want, " "))
			}
			for _, h := range got {
				if want, ok := tt.backends[h.Key()]; ok && h.Backend != want {
					t.Errorf("%s: backend %q, want %q", h.Key(), h.Backend, want)
				}
			}
		})
	}
	fused := search.Fuse(search.Ranked{search.BackendPostgres, []search.Hit{a, b}}, search.Ranked{search.BackendQdrant, []search.Hit{b}})
	if want := 1.0/61 + 1.0/62; math.Abs(fused[0].Score-want) > 1e-12 || fused[0].Ranks["postgres"] != 2 || fused[0].Ranks["qdrant"] != 1 {
		t.Errorf("fused %s: score %v ranks %v, want %v and postgres 2, qdrant 1", fused[0].Key(), fused[0].Score, fused[0].Ranks, want)
	}
}

func TestExcerptHighlightsQueryWordsByStem(t *testing.T) {
	long := strings.Repeat("вступление без нужных слов ", 20)
	tests := []struct {
		name, text, query string
		marks             []string
		prefix            bool
	}{
		{name: "russian forms", text: "Вышел новый релиз Go: в релизе ускорили сборщик мусора.", query: "релизы go", marks: []string{"релиз", "Go", "релизе"}},
		{name: "english forms", text: "Rust releases a new compiler; the release notes list it.", query: "release", marks: []string{"releases", "release"}},
		{name: "stop words are not marked", text: "The cat and the dog", query: "the dog", marks: []string{"dog"}},
		{name: "a far match moves the window", text: long + "Квантовый компьютер.", query: "квантовые", marks: []string{"Квантовый"}, prefix: true},
		{name: "no match: the start, nothing marked", text: "Погода в Москве", query: "football", marks: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, spans := search.Excerpt(tt.text, search.QueryTerms(tt.query))
			var got []string
			for _, s := range search.Segments(ex, spans) {
				if s.Mark {
					got = append(got, s.Text)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.marks, "|") {
				t.Fatalf("excerpt %q marks %q, want %q", ex, got, tt.marks)
			}
			if tt.prefix != strings.HasPrefix(ex, "…") {
				t.Errorf("excerpt %q: cut at the start = %v, want %v", ex, !tt.prefix, tt.prefix)
			}
			if n := len([]rune(ex)); n > search.ExcerptRunes+2 {
				t.Errorf("excerpt of %d runes", n)
			}
		})
	}
}

func TestQueryValidation(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		name string
		q    search.Query
		want []string // parts of the error; none: valid
	}{
		{name: "valid", q: search.Query{Text: " go релиз ", Limit: 5}},
		{name: "default limit", q: search.Query{Text: "go"}},
		{name: "empty", q: search.Query{Text: "  "}, want: []string{"q: the query text is empty"}},
		{name: "only punctuation", q: search.Query{Text: "?!"}, want: []string{"no letter or digit"}},
		{name: "too long", q: search.Query{Text: strings.Repeat("я", search.MaxQueryRunes+1)}, want: []string{"301 characters, at most 300"}},
		{name: "limit", q: search.Query{Text: "go", Limit: 51}, want: []string{"limit: 51 is out of range 1..50"}},
		{name: "negative limit", q: search.Query{Text: "go", Limit: -1}, want: []string{"limit: -1"}},
		{name: "dates reversed and long tag, both reported", q: search.Query{Text: "go", Filter: search.Filter{Tag: strings.Repeat("t", 65), Since: day("2026-02-01"), Until: day("2026-01-01")}},
			want: []string{"tag: 65 characters", "since 2026-02-01T00:00:00Z is not before until"}},
		{name: "bad username", q: search.Query{Text: "go", Filter: search.Filter{ChannelUsername: "a b"}}, want: []string{"channel: \"a b\" is not a username"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			err := q.Normalize()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if q.Limit < 1 || strings.TrimSpace(q.Text) != q.Text {
					t.Errorf("normalized %+v", q)
				}
				return
			}
			if !errors.Is(err, search.ErrInvalid) {
				t.Fatalf("Normalize = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestParseRefs(t *testing.T) {
	tests := []struct {
		name, ref string
		ch        events.ChannelID
		user      string
		msg       int64
		bad       bool
	}{
		{name: "id", ref: "1234567890/42", ch: 1234567890, msg: 42},
		{name: "bot api id", ref: "-1001234567890/42", ch: 1234567890, msg: 42},
		{name: "username", ref: "@golang_news/7", user: "golang_news", msg: 7},
		{name: "no slash", ref: "golang_news", bad: true},
		{name: "bad message", ref: "golang_news/x", bad: true},
		{name: "zero message", ref: "123/0", bad: true},
		{name: "bad channel", ref: "a!/1", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, user, msg, err := search.ParsePostRef(tt.ref)
			if tt.bad {
				if !errors.Is(err, search.ErrInvalid) {
					t.Fatalf("ParsePostRef(%q) = %v, want ErrInvalid", tt.ref, err)
				}
				return
			}
			if err != nil || ch != tt.ch || user != tt.user || msg != tt.msg {
				t.Fatalf("ParsePostRef(%q) = %d %q %d %v", tt.ref, ch, user, msg, err)
			}
		})
	}
	if got := search.Link(5, "", 9); got != "https://t.me/c/5/9" {
		t.Errorf("Link without username = %q", got)
	}
	if got := search.Link(5, "name", 9); got != "https://t.me/name/9" {
		t.Errorf("Link = %q", got)
	}
}

// fakes

type fakeFT struct {
	hits []search.Hit
	got  search.Query
}

func (f *fakeFT) FullText(_ context.Context, q search.Query) ([]search.Hit, error) {
	f.got = q
	return f.hits, nil
}

type fakeSem struct {
	space string
	hits  []search.Hit
	vec   []float32
}

func (f *fakeSem) Spaces(context.Context) ([]string, error) {
	if f.space == "" {
		return nil, nil
	}
	return []string{f.space}, nil
}

func (f *fakeSem) Nearest(_ context.Context, space string, vec []float32, _ search.Filter, limit int) ([]search.Hit, error) {
	if space != f.space {
		return nil, errors.New("wrong space " + space)
	}
	f.vec = vec
	return f.hits[:min(limit, len(f.hits))], nil
}

type fakeEmb struct{ info embed.Info }

func (f fakeEmb) Info() embed.Info { return f.info }
func (f fakeEmb) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i := range texts {
		out[i] = []float32{1, 0}
	}
	return out, nil
}

type fakeHydrator struct{ topics map[string][]string }

func (f fakeHydrator) Hydrate(_ context.Context, hits []search.Hit) ([]search.Hit, error) {
	out := make([]search.Hit, len(hits))
	for i, h := range hits {
		h.Topics = f.topics[h.Key()]
		h.ChannelTitle = "title"
		out[i] = h.WithText("hydrated text about go")
	}
	return out, nil
}

func TestServiceRefusesAnotherVectorSpace(t *testing.T) {
	info := embed.Info{Name: "use", Model: "usem3", Version: "1", Dim: 512}
	sem := &fakeSem{space: "hashing-hashing-v1-1-256"}
	s := &search.Service{Semantic: sem, Embedder: fakeEmb{info}}
	_, err := s.Search(context.Background(), search.Query{Text: "go"})
	if !errors.Is(err, search.ErrSpaceMismatch) {
		t.Fatalf("Search = %v, want ErrSpaceMismatch", err)
	}
	for _, w := range []string{"hashing-hashing-v1-1-256", info.Space()} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if sem.vec != nil {
		t.Error("the collection was searched with a vector of another space")
	}
}

func TestServiceFusesHydratesAndFilters(t *testing.T) {
	info := embed.Info{Name: "use", Model: "usem3", Version: "1", Dim: 2}
	a := hit(1, 1, "2026-01-01").WithText("Go 1.26 вышел")
	a.ChannelUsername = "gonews"
	b, c := hit(1, 2, "2026-01-02"), hit(2, 3, "2026-01-03")
	ft := &fakeFT{hits: []search.Hit{a}}
	sem := &fakeSem{space: info.Space(), hits: []search.Hit{c, b, a}}
	s := &search.Service{FullText: ft, Semantic: sem, Embedder: fakeEmb{info},
		Hydrator: fakeHydrator{topics: map[string][]string{"1/1": {"programming"}, "2/3": {"programming"}}}}
	res, err := s.Search(context.Background(), search.Query{Text: "go", Filter: search.Filter{Topic: "Programming"}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(res.Hits), " "); got != "1/1 2/3" {
		t.Fatalf("hits %q, want 1/1 (both backends) then 2/3 (1/2 lacks the topic)", got)
	}
	h := res.Hits[0]
	if h.Backend != "postgres+qdrant" || h.Link != "https://t.me/gonews/1" || h.ChannelTitle != "title" || len(h.Highlights) != 1 || ft.got.Limit < 30 {
		t.Errorf("first hit %+v (full-text asked for %d)", h, ft.got.Limit)
	}
	if len(sem.vec) != 2 {
		t.Errorf("qdrant searched with %v", sem.vec)
	}
	if strings.Join(res.Backends, ",") != "postgres,qdrant" {
		t.Errorf("backends %v", res.Backends)
	}
	if _, err := (&search.Service{}).Search(context.Background(), search.Query{Text: "go"}); !errors.Is(err, search.ErrNoBackend) {
		t.Errorf("no backends: %v", err)
	}
}

// recordingFT finds posts only for queries in websearch "or" form, and records each query.
type recordingFT struct{ texts []string }

func (f *recordingFT) FullText(_ context.Context, q search.Query) ([]search.Hit, error) {
	f.texts = append(f.texts, q.Text)
	if strings.Contains(q.Text, " or ") {
		return []search.Hit{hit(1, 1, "2026-01-01").WithText("диабет")}, nil
	}
	return nil, nil
}

func TestFullTextRetriesWithAnyWordWhenEveryWordMatchesNothing(t *testing.T) {
	tests := []struct {
		name, q string
		want    []string
	}{
		{name: "plain words", q: "риск диабета недосып", want: []string{"риск диабета недосып", "риск or диабета or недосып"}},
		{name: "one word", q: "диабет", want: []string{"диабет"}},
		{name: "a phrase is meant", q: `"риск диабета" недосып`, want: []string{`"риск диабета" недосып`}},
		{name: "an exclusion is meant", q: "диабет -сахар", want: []string{"диабет -сахар"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &recordingFT{}
			res, err := (&search.Service{FullText: ft}).Search(context.Background(), search.Query{Text: tt.q})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ft.texts, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("asked %q, want %q", ft.texts, tt.want)
			}
			if len(tt.want) == 2 && len(res.Hits) != 1 {
				t.Errorf("hits %v", keys(res.Hits))
			}
		})
	}
}
