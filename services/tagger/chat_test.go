package tagger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/openaicompat"
	"github.com/tgflow/tgflow/services/tagger"
)

// chatAPI speaks the OpenAI wire format for /chat/completions: it answers with content, or
// with status when it is set (a scripted failure).
type chatAPI struct {
	t       *testing.T
	mu      sync.Mutex
	status  int
	content string
	calls   atomic.Int64
	bodies  []map[string]any
}

func (f *chatAPI) set(status int, content string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.content = status, content
}

func (f *chatAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read request: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("request body is not JSON: %v", err)
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	status, content := f.status, f.content
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	if status != 0 && status != http.StatusOK {
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":{"message":"scripted failure","type":"server_error","code":"scripted","param":null}}`)
		return
	}
	c, err := json.Marshal(content)
	if err != nil {
		f.t.Errorf("encode content: %v", err)
	}
	fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":%s}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`, c)
}

func chatServer(t *testing.T) (*chatAPI, *openaicompat.Client) {
	t.Helper()
	f := &chatAPI{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := openaicompat.New(openaicompat.Config{
		BaseURL: srv.URL + "/v1", APIKey: config.Secret("sk-test"), ChatModel: "chat-model",
		Timeout: 2 * time.Second, MaxRetries: 0, MaxConcurrency: 4, RPS: 1000,
	}, openaicompat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func chatTagger(t *testing.T, c *openaicompat.Client) *tagger.ChatTagger {
	t.Helper()
	list, err := topics.Default()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := tagger.NewChatTagger(c, "chat-model", localEngine(t), list, 3, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestChatTagger(t *testing.T) {
	in := tagger.Input{Text: goPost, Hashtags: []string{"golang"}}
	tests := []struct {
		name     string
		status   int
		content  string
		provider string   // "openai" or the local fallback
		tags     []string // for the provider's answers
		topics   []string
		err      error
	}{
		{name: "answer", content: `{"tags":["#Golang","Релиз Go","golang"],"topics":["programming"]}`,
			provider: "openai", tags: []string{"golang", "релиз_go"}, topics: []string{"programming"}},
		{name: "empty answer is a result", content: `{"tags":[],"topics":[]}`, provider: "openai", tags: nil},
		{name: "topic outside the list", content: `{"tags":["go"],"topics":["cooking-of-go"]}`, provider: tagger.Provider},
		{name: "six tags", content: `{"tags":["a1","b1","c1","d1","e1","f1"],"topics":[]}`, provider: tagger.Provider},
		{name: "not JSON", content: `tags: go`, provider: tagger.Provider},
		{name: "tags that are no tags", content: `{"tags":["###"],"topics":[]}`, provider: tagger.Provider},
		{name: "rejected", status: http.StatusBadRequest, provider: tagger.Provider},
		{name: "unavailable", status: http.StatusServiceUnavailable, err: openaicompat.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := chatServer(t)
			f.set(tt.status, tt.content)
			res, err := chatTagger(t, c).Tag(context.Background(), in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || worker.Classify(err) != worker.ClassTransient {
					t.Fatalf("err %v (class %s), want transient %v", err, worker.Classify(err), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Provider != tt.provider {
				t.Fatalf("provider %q, want %q (result %+v)", res.Provider, tt.provider, res)
			}
			if tt.provider == tagger.Provider {
				if tags := names(res.Tags); !slices.Contains(tags, "golang") || !slices.Contains(tags, "go") {
					t.Errorf("fallback tags %q, want the local tagger's", tags)
				}
				// No topic choice: the embedder computes the topics from the post's vector.
				if len(res.Topics) != 0 || res.TopicsSource != "" {
					t.Errorf("fallback topics %q from %q, want none", res.Topics, res.TopicsSource)
				}
				return
			}
			// The model's choice, an empty one too, is named so that the embedder passes it on.
			if res.TopicsSource != events.TopicsFromTagger+"openai/chat-model" {
				t.Errorf("topics source %q, want the chat model's", res.TopicsSource)
			}
			if got := names(res.Tags); !slices.Equal(got, tt.tags) || !slices.Equal(res.Topics, tt.topics) || res.Model != "chat-model" {
				t.Errorf("tags %q topics %q model %q, want %q %q chat-model", got, res.Topics, res.Model, tt.tags, tt.topics)
			}
			if res.Tags == nil {
				t.Error("nil tags: an empty list is recorded as []")
			}
		})
	}
}

func TestChatRequestRestrictsTopics(t *testing.T) {
	f, c := chatServer(t)
	f.set(0, `{"tags":["go"],"topics":[]}`)
	ct := chatTagger(t, c)
	if _, err := ct.Tag(context.Background(), tagger.Input{Text: "ок #go"}); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("a short text cost %d provider calls, want its hashtags without a call", n)
	}
	if _, err := ct.Tag(context.Background(), tagger.Input{Text: goPost, VisionText: []string{ocrText}}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	body := f.bodies[0]
	f.mu.Unlock()
	raw, err := json.Marshal(body["response_format"])
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Strict bool `json:"strict"`
			Schema struct {
				Properties struct {
					Tags struct {
						MaxItems int `json:"maxItems"`
					} `json:"tags"`
					Topics struct {
						Items struct {
							Enum []string `json:"enum"`
						} `json:"items"`
					} `json:"topics"`
				} `json:"properties"`
			} `json:"schema"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	list, err := topics.Default()
	if err != nil {
		t.Fatal(err)
	}
	want := topics.Names(list)
	props := rf.JSONSchema.Schema.Properties
	if rf.Type != "json_schema" || !rf.JSONSchema.Strict || props.Tags.MaxItems != 5 || !slices.Equal(props.Topics.Items.Enum, want) {
		t.Errorf("response_format %s: want a strict schema, at most 5 tags, topics from the %d configured names", raw, len(want))
	}
	msgs, _ := json.Marshal(body["messages"])
	if !strings.Contains(string(msgs), "КВАНТОВЫЙ ПРОЦЕССОР") || !strings.Contains(string(msgs), "Вышел Go 1.26") {
		t.Errorf("the prompt lacks the post or its vision text: %s", msgs)
	}
}

// TestProviderOutageHoldsInputs runs the stage with TGFLOW_TAGGER=openai against a provider
// that is down: the breaker opens, nothing is dead-lettered or tagged; when the provider
// returns, every post is tagged by it.
func TestProviderOutageHoldsInputs(t *testing.T) {
	f, c := chatServer(t)
	f.set(http.StatusInternalServerError, "")
	e := startLog(t)
	const n = 10
	for i := range n {
		e.publish(t, parsedEv(int64(i+1), filler(i), false))
	}
	cfg := stageConfig()
	cfg.Kind = tagger.KindOpenAI
	st, stop := e.runStage(t, cfg, c)
	defer stop()
	natstest.Eventually(t, 30*time.Second, "the breaker to open", func() bool { return st.Breaker().State() == gobreaker.StateOpen })
	// Let it try again (half-open) and fail at least twice more while down.
	opened := f.calls.Load()
	natstest.Eventually(t, 30*time.Second, "trial calls while down", func() bool { return f.calls.Load() >= opened+2 })
	if got := natstest.Count(t, e.JS, "posts.tagged.>"); got != 0 {
		t.Fatalf("%d posts tagged while the provider is down", got)
	}
	e.dlqEmpty(t)
	f.set(0, `{"tags":["новости"],"topics":[]}`)
	natstest.Eventually(t, 60*time.Second, "every post tagged once the provider is back", func() bool { return natstest.Count(t, e.JS, "posts.tagged.>") >= n })
	e.idle(t)
	all := e.tagged(t)
	if len(all) != n {
		t.Errorf("%d posts.tagged for %d posts", len(all), n)
	}
	for _, p := range all {
		if p.Provider != "openai" || !slices.Equal(tagNames(p), []string{"новости"}) {
			t.Errorf("post %d: provider %q tags %q, want the provider's answer", p.MessageID, p.Provider, tagNames(p))
		}
	}
	e.dlqEmpty(t)
	if got := e.tagged(t); len(got) == 0 || got[0].Trigger != events.TriggerInitial {
		t.Errorf("trigger of the first output: %+v", got)
	}
}
