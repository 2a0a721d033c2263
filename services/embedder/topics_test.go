package embedder_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/embedder"
)

func handlerOf(t *testing.T, e embed.Embedder) *embedder.Handler {
	t.Helper()
	h, err := embedder.NewHandler(e, 8, time.Millisecond, nil, topics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestTopicsComeFromTheVector: with no chat choice, the embedder gives a post the topics of
// its own vector, and says so.
func TestTopicsComeFromTheVector(t *testing.T) {
	t.Run("hashing: a post using a topic's words", func(t *testing.T) {
		e, err := hashing.New(hashing.Config{Dim: 256})
		if err != nil {
			t.Fatal(err)
		}
		h := handlerOf(t, e)
		in, p := enriched(t, 1, "Сборная выиграла матч: футболисты забили два гола, тренер доволен, болельщики празднуют победу в чемпионате.")
		got := handle(t, h, in, p)
		if len(got.Topics) == 0 || got.Topics[0] != "football" {
			t.Errorf("topics %q, want football first", got.Topics)
		}
		if want := events.TopicsFromEmbedding + e.Info().Space(); got.TopicsSource != want {
			t.Errorf("topics source %q, want %q", got.TopicsSource, want)
		}
		in, p = enriched(t, 2, "Привет всем! Сегодня был отличный день, спасибо, что вы с нами. Увидимся завтра вечером.")
		if got := handle(t, h, in, p); len(got.Topics) != 0 || got.TopicsSource == "" {
			t.Errorf("small talk: topics %q from %q, want none, from the embedding", got.Topics, got.TopicsSource)
		}
		// A bare photo is embedded (a placeholder) but is about no topic.
		in, p = enriched(t, 3, "")
		if got := handle(t, h, in, p); len(got.Topics) != 0 {
			t.Errorf("bare post: topics %q", got.Topics)
		}
	})
	t.Run("use: a Russian post and its English translation", func(t *testing.T) {
		h := handlerOf(t, usetest.Load(t))
		topicsOf := func(msg int64, text string) []string {
			in, p := enriched(t, msg, text)
			got := handle(t, h, in, p)
			if !strings.HasPrefix(got.TopicsSource, events.TopicsFromEmbedding+"use-") {
				t.Errorf("topics source %q", got.TopicsSource)
			}
			return got.Topics
		}
		pairs := []struct{ name, ru, en, want string }{
			{"go release", "Вышел Go 1.23: итераторы по функциям в range, новая телеметрия и ускорение компилятора. Разработчикам стоит обновиться.",
				"Go 1.23 is out: range over function iterators, new telemetry and a faster compiler. Developers should upgrade.", "programming"},
			{"football final", "Сборная Аргентины обыграла Бразилию в финале чемпионата со счётом 2:1, победный гол забит на последней минуте.",
				"Argentina beat Brazil 2:1 in the championship final, the winning goal scored in the last minute.", "football"},
		}
		for i, pr := range pairs {
			ru, en := topicsOf(int64(10+2*i), pr.ru), topicsOf(int64(11+2*i), pr.en)
			t.Logf("%s: ru %q en %q", pr.name, ru, en)
			if !slices.Contains(ru, pr.want) || !slices.Contains(en, pr.want) {
				t.Errorf("%s: ru %q, en %q, want %s in both", pr.name, ru, en, pr.want)
			}
		}
	})
}

// TestChatTopicsPassThrough: topics a chat tagger chose (with their source) are the post's,
// untouched, whatever its vector says, an empty choice too; topics without a source (a
// tagged fact from before topics moved here) are not a choice: the vector's are computed.
func TestChatTopicsPassThrough(t *testing.T) {
	e, err := hashing.New(hashing.Config{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	h := handlerOf(t, e)
	football := "Сборная выиграла матч: футболисты забили два гола, тренер доволен, болельщики празднуют победу в чемпионате."
	const chat = events.TopicsFromTagger + "openai/chat-model"
	in0, p0 := enriched(t, 100, football)
	computed := handle(t, h, in0, p0) // no topics from the tagger
	if !slices.Contains(computed.Topics, "football") {
		t.Fatalf("the post's own topics %q lack football", computed.Topics)
	}
	tests := []struct {
		name       string
		topics     []string
		source     string
		want       []string
		wantSource string
	}{
		{name: "the chat model's choice", topics: []string{"music", "culture"}, source: chat, want: []string{"music", "culture"}, wantSource: chat},
		{name: "the chat model chose none", topics: nil, source: chat, want: nil, wantSource: chat},
		{name: "no source: computed", topics: []string{"music"}, source: "", want: computed.Topics, wantSource: computed.TopicsSource},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, p := enriched(t, int64(i+1), football)
			p.Topics, p.TopicsSource = tt.topics, tt.source
			got := handle(t, h, in, p)
			if !slices.Equal(got.Topics, tt.want) || got.TopicsSource != tt.wantSource {
				t.Errorf("topics %q from %q, want %q from %q", got.Topics, got.TopicsSource, tt.want, tt.wantSource)
			}
		})
	}
}

// TestStageConfigReadsTheTopicSettings: the embedder stage reads the topic list and its
// settings under the names they had in the tagger, and validates them.
func TestStageConfigReadsTheTopicSettings(t *testing.T) {
	spec := embedder.Spec()
	cfg, ok := spec.Config().(*embedder.StageConfig)
	if !ok {
		t.Fatalf("Spec().Config() is %T", spec.Config())
	}
	cfg.Embedder = embedder.Config{Kind: embedder.KindHashing, HashingDim: 256, OpenAIDim: 1, Batch: 1}
	cfg.Topics = topics.Config{Threshold: 2, Max: 0}
	err := cfg.Validate()
	for _, name := range []string{"TGFLOW_TAGGER_TOPIC_THRESHOLD", "TGFLOW_TAGGER_MAX_TOPICS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate() = %v, want it to name %s", err, name)
		}
	}
}
