package topics_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
)

// fixture is one post of testdata/tagger/posts.json and the topic it is about.
type fixture struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	Text  string `json:"text"`
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	b, err := os.ReadFile("../../../testdata/tagger/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	var posts []fixture
	if err := json.Unmarshal(b, &posts); err != nil {
		t.Fatal(err)
	}
	if len(posts) < 30 {
		t.Fatalf("only %d fixture posts", len(posts))
	}
	return posts
}

var smallTalk = []string{
	"Привет всем! Сегодня был отличный день, спасибо, что вы с нами. Увидимся завтра вечером.",
	"Thanks everyone for being with us today, see you tomorrow evening and have a nice weekend!",
}

// hashing256 is the hashing embedder at the embedder stage's default dimension.
func hashing256(t testing.TB) embed.Embedder {
	t.Helper()
	e, err := hashing.New(hashing.Config{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func matcher(t testing.TB, e embed.Embedder, list []topics.Topic, o topics.Options) *topics.Matcher {
	t.Helper()
	if list == nil {
		var err error
		if list, err = topics.Default(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := topics.NewMatcher(context.Background(), e, list, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func vec(t testing.TB, e embed.Embedder, text string) []float32 {
	t.Helper()
	v, err := e.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}

// TestCalibration keeps the default thresholds honest on the fixture posts: with the default
// threshold of each kind, nearly every on-topic post gets its topic first, none gets a wrong
// topic first, and small talk gets none.
func TestCalibration(t *testing.T) {
	tests := []struct {
		name      string
		emb       func(testing.TB) embed.Embedder
		wantRight int // of 36
	}{
		{name: "hashing, 256 dimensions", emb: hashing256, wantRight: 34},
		{name: "hashing, 2048 dimensions", emb: func(t testing.TB) embed.Embedder {
			e, err := hashing.New(hashing.Config{Dim: topics.WideLexicalDim})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}, wantRight: 36},
		{name: "use", emb: func(t testing.TB) embed.Embedder { return usetest.Load(t) }, wantRight: 35},
	}
	posts := loadFixtures(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.emb(t)
			m := matcher(t, e, nil, topics.Options{})
			right := 0
			for _, p := range posts {
				got := m.Match(vec(t, e, p.Text))
				switch {
				case len(got) > 0 && got[0] == p.Topic:
					right++
				case slices.Contains(got, p.Topic):
					t.Logf("%s: %q, %s not first", p.Name, got, p.Topic)
				case len(got) > 0:
					t.Errorf("%s: topics %q, want %s or none", p.Name, got, p.Topic)
				default:
					t.Logf("%s: no topic (want %s)", p.Name, p.Topic)
				}
			}
			if right < tt.wantRight {
				t.Errorf("%d of %d posts got their topic first, want at least %d", right, len(posts), tt.wantRight)
			}
			for _, text := range smallTalk {
				if got := m.Match(vec(t, e, text)); len(got) != 0 {
					t.Errorf("small talk %q got topics %q", text, got)
				}
			}
		})
	}
}

func TestMatchFollowsTheConfiguredList(t *testing.T) {
	e := hashing256(t)
	pets := []topics.Topic{
		{Name: "pets", RU: "кошки, собаки, котята, щенки, питомцы, ветеринар", EN: "cats, dogs, kittens, puppies, pets, vet"},
		{Name: "gardening", RU: "сад, огород, рассада, томаты, грядки, урожай", EN: "garden, seedlings, tomatoes, harvest"},
	}
	text := "Наши котята подросли: щенки соседей тоже, ветеринар доволен питомцами."
	if got := matcher(t, e, pets, topics.Options{}).Match(vec(t, e, text)); !slices.Equal(got, []string{"pets"}) {
		t.Fatalf("topics %q, want [pets]", got)
	}
	if got := matcher(t, e, []topics.Topic{}, topics.Options{}).Match(vec(t, e, text)); len(got) != 0 {
		t.Fatalf("an empty topic list gave topics %q", got)
	}
}

func TestMatchBounds(t *testing.T) {
	e := hashing256(t)
	// Three topics described by the same words: all equally close to a post using them.
	same := "футбол, матч, гол, команда"
	list := []topics.Topic{{Name: "a", RU: same}, {Name: "b", RU: same}, {Name: "c", RU: same}}
	v := vec(t, e, "Футбол вечером: матч, гол и команда соседей")
	tests := []struct {
		name string
		o    topics.Options
		want []string
	}{
		{name: "ties by name, up to max", o: topics.Options{Max: 2}, want: []string{"a", "b"}},
		{name: "all three", o: topics.Options{Max: 3}, want: []string{"a", "b", "c"}},
		{name: "threshold above every score", o: topics.Options{Threshold: 0.999}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matcher(t, e, list, tt.o).Match(v); !slices.Equal(got, tt.want) {
				t.Fatalf("topics %q, want %q", got, tt.want)
			}
		})
	}
	// The relative cut drops a topic far below the best.
	cut := []topics.Topic{{Name: "football", RU: same}, {Name: "weak", RU: "гол, погода, дождь, ветер, снег, мороз, жара"}}
	m := matcher(t, e, cut, topics.Options{Threshold: 0.01})
	if got := m.Match(v); !slices.Equal(got, []string{"football"}) {
		t.Fatalf("topics %q, want [football] (weak is below the cut: %v)", got, m.Scores(v))
	}
	if got := m.Match(make([]float32, 3)); len(got) != 0 {
		t.Fatalf("a vector of another dimension got topics %q", got)
	}
}

func TestMatcherNamesItsVectorSpace(t *testing.T) {
	e := hashing256(t)
	m := matcher(t, e, nil, topics.Options{})
	if want := events.TopicsFromEmbedding + e.Info().Space(); m.Source() != want {
		t.Fatalf("Source() = %q, want %q", m.Source(), want)
	}
	if o := m.Options(); o.Threshold != topics.DefaultLexicalThreshold || o.Max != topics.DefaultMax || o.RelativeCut != topics.DefaultRelativeCut {
		t.Fatalf("options %+v, want the lexical defaults", o)
	}
}

// failing fails every Embed call with err.
type failing struct {
	embed.Embedder
	err error
}

func (f failing) Embed(context.Context, []string) ([][]float32, error) { return nil, f.err }

func TestNewMatcherRejects(t *testing.T) {
	e := hashing256(t)
	down := errors.New("provider down")
	if _, err := topics.NewMatcher(context.Background(), failing{e, down}, []topics.Topic{{Name: "x", RU: "икс"}}, topics.Options{}); !errors.Is(err, down) {
		t.Errorf("failing embedder: %v", err)
	}
	if _, err := topics.NewMatcher(context.Background(), nil, nil, topics.Options{}); err == nil {
		t.Errorf("nil embedder accepted")
	}
	tests := []struct {
		name string
		list []topics.Topic
		o    topics.Options
	}{
		{name: "threshold", o: topics.Options{Threshold: 1.5}},
		{name: "cut", o: topics.Options{RelativeCut: 2}},
		{name: "max above the fact's bound", o: topics.Options{Max: events.MaxTopics + 1}},
		{name: "unnormalised name", list: []topics.Topic{{Name: "Sport", RU: "спорт"}}},
		{name: "repeated name", list: []topics.Topic{{Name: "sport", RU: "спорт"}, {Name: "sport", EN: "sport"}}},
		{name: "no description", list: []topics.Topic{{Name: "sport"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := topics.NewMatcher(context.Background(), e, tt.list, tt.o); !errors.Is(err, topics.ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
		})
	}
}

func TestDefaultAndLoadedLists(t *testing.T) {
	list, err := topics.Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 30 {
		t.Fatalf("%d default topics, want 30", len(list))
	}
	for _, tp := range list {
		if tp.RU == "" || tp.EN == "" {
			t.Errorf("topic %q lacks a Russian or English description", tp.Name)
		}
	}
	if _, err := topics.Load(strings.NewReader(`[{"name":"x","ru":"икс","extra":1}]`)); !errors.Is(err, topics.ErrConfig) {
		t.Errorf("unknown field: %v", err)
	}
	got, err := topics.Load(strings.NewReader(`[{"name":"pets","ru":"кошки","en":"cats"}]`))
	if err != nil || len(got) != 1 || got[0] != (topics.Topic{Name: "pets", RU: "кошки", EN: "cats"}) {
		t.Fatalf("Load = %+v, %v", got, err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "topics.json")
	if err := os.WriteFile(file, []byte(`[{"name":"pets","ru":"кошки","en":"cats"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := topics.Config{File: file, Max: 3}
	if list, err := c.List(); err != nil || len(list) != 1 || list[0].Name != "pets" {
		t.Fatalf("List() = %+v, %v", list, err)
	}
	if list, err := (&topics.Config{Max: 3}).List(); err != nil || len(list) != 30 {
		t.Fatalf("List() without a file = %d topics, %v", len(list), err)
	}
	if _, err := (&topics.Config{File: filepath.Join(dir, "missing.json")}).List(); !errors.Is(err, topics.ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
	tests := []struct {
		name string
		c    topics.Config
		want string // "" means valid
	}{
		{name: "defaults", c: topics.Config{Max: 3}},
		{name: "threshold", c: topics.Config{Threshold: -2, Max: 3}, want: "TGFLOW_TAGGER_TOPIC_THRESHOLD"},
		{name: "no topics", c: topics.Config{Max: 0}, want: "TGFLOW_TAGGER_MAX_TOPICS"},
		{name: "too many", c: topics.Config{Max: events.MaxTopics + 1}, want: "TGFLOW_TAGGER_MAX_TOPICS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestMatchIsTheRuleOverScores: Match (which selects without sorting, for every post) gives
// what the rule says over Scores: at least the threshold and the cut of the best, best first,
// at most Max.
func TestMatchIsTheRuleOverScores(t *testing.T) {
	e := hashing256(t)
	for _, o := range []topics.Options{{}, {Threshold: 0.05, Max: 5}, {Threshold: 0.01, RelativeCut: 0.3, Max: 10}} {
		m := matcher(t, e, nil, o)
		o = m.Options()
		for _, p := range loadFixtures(t) {
			v := vec(t, e, p.Text)
			s := m.Scores(v)
			want := []string{}
			for _, sc := range s {
				if len(want) == o.Max || sc.Sim < o.Threshold || sc.Sim < o.RelativeCut*s[0].Sim {
					break
				}
				want = append(want, sc.Name)
			}
			if got := m.Match(v); !slices.Equal(got, want) {
				t.Errorf("%+v, %s: Match %q, the rule over Scores %q", o, p.Name, got, want)
			}
		}
	}
}
