package openaicompat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// fakeAPI speaks the OpenAI wire format for /chat/completions and /embeddings. Each
// request is answered by the next scripted reply (the last one repeats).
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	replies []reply
	calls   atomic.Int64
	bodies  []map[string]any
	auth    []string
}

type reply struct {
	status     int
	retryAfter string
	content    string        // chat: the assistant message content
	embedDims  int           // embeddings: vector length
	delay      time.Duration // before answering
	raw        string        // a raw body instead of a well-formed one
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.calls.Add(1)) - 1
	f.mu.Lock()
	rp := f.replies[min(n, len(f.replies)-1)]
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("request body is not JSON: %v", err)
	}
	f.bodies = append(f.bodies, body)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	if rp.delay > 0 {
		select {
		case <-time.After(rp.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if rp.retryAfter != "" {
		w.Header().Set("Retry-After", rp.retryAfter)
	}
	if rp.status != 0 && rp.status != http.StatusOK {
		w.WriteHeader(rp.status)
		fmt.Fprintf(w, `{"error":{"message":"scripted failure","type":"server_error","code":"scripted","param":null}}`)
		return
	}
	if rp.raw != "" {
		io.WriteString(w, rp.raw)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		content, _ := json.Marshal(rp.content)
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":%s}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`, content)
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		inputs, _ := body["input"].([]any)
		var data []string
		for i := range inputs {
			vec := make([]string, rp.embedDims)
			for j := range vec {
				vec[j] = fmt.Sprint(float64(i+1) * float64(j+1))
			}
			data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[%s]}`, i, strings.Join(vec, ",")))
		}
		fmt.Fprintf(w, `{"object":"list","model":"e","data":[%s],"usage":{"prompt_tokens":7,"total_tokens":7}}`, strings.Join(data, ","))
	default:
		http.NotFound(w, r)
	}
}

func serve(t *testing.T, replies ...reply) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{t: t, replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/v1"
}

func newClient(t *testing.T, base string, mod func(*openaicompat.Config), opts openaicompat.Options) *openaicompat.Client {
	t.Helper()
	cfg := openaicompat.Config{
		BaseURL: base, APIKey: config.Secret("sk-test-SECRET-never-printed"),
		ChatModel: "chat-model", EmbedModel: "embed-model",
		Timeout: 5 * time.Second, MaxRetries: 2, MaxConcurrency: 4, RPS: 1000,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := openaicompat.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const tagSchema = `{
  "type": "object",
  "additionalProperties": false,
  "required": ["tags", "topics"],
  "properties": {
    "tags": {"type": "array", "minItems": 0, "maxItems": 5, "items": {"type": "string", "minLength": 1}},
    "topics": {"type": "array", "items": {"type": "string"}}
  }
}`

type tagAnswer struct {
	Tags   []string `json:"tags"`
	Topics []string `json:"topics"`
}

func schema(t *testing.T) *openaicompat.Schema {
	t.Helper()
	s, err := openaicompat.NewSchema("post_tags", []byte(tagSchema))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChatJSON(t *testing.T) {
	okAnswer := `{"tags":["golang","release"],"topics":["programming"]}`
	tests := []struct {
		name      string
		replies   []reply
		wantErr   error
		wantCalls int64
		wantTags  []string
	}{
		{name: "success", replies: []reply{{content: okAnswer}}, wantCalls: 1, wantTags: []string{"golang", "release"}},
		{name: "fenced JSON is accepted", replies: []reply{{content: "```json\n" + okAnswer + "\n```"}}, wantCalls: 1, wantTags: []string{"golang", "release"}},
		{name: "429 with Retry-After, then success", replies: []reply{{status: 429, retryAfter: "1"}, {content: okAnswer}}, wantCalls: 2, wantTags: []string{"golang", "release"}},
		{name: "500s, then success", replies: []reply{{status: 500}, {status: 503}, {content: okAnswer}}, wantCalls: 3, wantTags: []string{"golang", "release"}},
		{name: "500s beyond the retries", replies: []reply{{status: 502}}, wantErr: openaicompat.ErrUnavailable, wantCalls: 3},
		{name: "credentials refused", replies: []reply{{status: 401}}, wantErr: openaicompat.ErrUnavailable, wantCalls: 1},
		{name: "request rejected", replies: []reply{{status: 400}}, wantErr: openaicompat.ErrRejected, wantCalls: 1},
		{name: "answer is not JSON", replies: []reply{{content: "golang, release"}}, wantErr: openaicompat.ErrInvalidAnswer, wantCalls: 1},
		{name: "answer violates the schema", replies: []reply{{content: `{"tags":["a","b","c","d","e","f"],"topics":[]}`}}, wantErr: openaicompat.ErrInvalidAnswer, wantCalls: 1},
		{name: "answer has an unknown field", replies: []reply{{content: `{"tags":[],"topics":[],"extra":1}`}}, wantErr: openaicompat.ErrInvalidAnswer, wantCalls: 1},
		{name: "malformed response body", replies: []reply{{raw: `{"id":`}}, wantErr: openaicompat.ErrUnavailable, wantCalls: 1},
		{name: "no choices", replies: []reply{{raw: `{"id":"x","object":"chat.completion","choices":[],"usage":{"total_tokens":1}}`}}, wantErr: openaicompat.ErrInvalidAnswer, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, base := serve(t, tt.replies...)
			c := newClient(t, base, nil, openaicompat.Options{})
			var got tagAnswer
			_, err := c.ChatJSON(context.Background(), openaicompat.ChatRequest{System: "tag", User: "Вышел Go 1.23", Schema: schema(t)}, &got)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := f.calls.Load(); n != tt.wantCalls {
				t.Errorf("server saw %d calls, want %d", n, tt.wantCalls)
			}
			if tt.wantErr == nil && strings.Join(got.Tags, ",") != strings.Join(tt.wantTags, ",") {
				t.Errorf("tags = %v, want %v", got.Tags, tt.wantTags)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks the API key: %v", err)
			}
		})
	}
}

func TestChatRequestOnTheWire(t *testing.T) {
	f, base := serve(t, reply{content: `{"tags":[],"topics":[]}`})
	c := newClient(t, base, nil, openaicompat.Options{})
	var got tagAnswer
	_, err := c.ChatJSON(context.Background(), openaicompat.ChatRequest{
		System: "sys", User: "look", Schema: schema(t),
		Images: []openaicompat.Image{{MIME: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}},
	}, &got)
	if err != nil {
		t.Fatal(err)
	}
	body := f.bodies[0]
	if body["model"] != "chat-model" {
		t.Errorf("model = %v", body["model"])
	}
	rf, _ := body["response_format"].(map[string]any)
	js, _ := rf["json_schema"].(map[string]any)
	if rf["type"] != "json_schema" || js["name"] != "post_tags" || js["schema"] == nil {
		t.Errorf("response_format = %v", rf)
	}
	raw, _ := json.Marshal(body["messages"])
	if !strings.Contains(string(raw), `data:image/png;base64,iVBORw==`) {
		t.Errorf("image not sent as a data URI: %s", raw)
	}
	if f.auth[0] != "Bearer sk-test-SECRET-never-printed" {
		t.Errorf("Authorization = %q", f.auth[0])
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f, base := serve(t, reply{status: 429, retryAfter: "1"}, reply{content: `{"tags":[],"topics":[]}`})
	c := newClient(t, base, nil, openaicompat.Options{})
	start := time.Now()
	var got tagAnswer
	if _, err := c.ChatJSON(context.Background(), openaicompat.ChatRequest{User: "x", Schema: schema(t)}, &got); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the client must have waited the second the server asked for.
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("retried after %v, Retry-After asked for 1s", waited)
	}
	if f.calls.Load() != 2 {
		t.Errorf("calls = %d, want 2", f.calls.Load())
	}
}

func TestSlowAnswerTimesOut(t *testing.T) {
	_, base := serve(t, reply{delay: 3 * time.Second, content: `{"tags":[],"topics":[]}`})
	c := newClient(t, base, func(c *openaicompat.Config) { c.Timeout = 200 * time.Millisecond; c.MaxRetries = 0 }, openaicompat.Options{})
	var got tagAnswer
	_, err := c.ChatJSON(context.Background(), openaicompat.ChatRequest{User: "x", Schema: schema(t)}, &got)
	if !errors.Is(err, openaicompat.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newClient(t, "http://"+addr+"/v1", func(c *openaicompat.Config) { c.MaxRetries = 0 }, openaicompat.Options{})
	var got tagAnswer
	_, err = c.ChatJSON(context.Background(), openaicompat.ChatRequest{User: "x", Schema: schema(t)}, &got)
	if !errors.Is(err, openaicompat.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestCallerCancellationIsNotAnOutage(t *testing.T) {
	_, base := serve(t, reply{delay: 3 * time.Second, content: `{}`})
	c := newClient(t, base, nil, openaicompat.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var got tagAnswer
	_, err := c.ChatJSON(ctx, openaicompat.ChatRequest{User: "x", Schema: schema(t)}, &got)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, openaicompat.ErrUnavailable) {
		t.Fatalf("err = %v, want the caller's context error", err)
	}
}

func TestDailyTokenBudget(t *testing.T) {
	f, base := serve(t, reply{content: `{"tags":[],"topics":[]}`}) // 15 tokens a call
	now := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	c := newClient(t, base, func(c *openaicompat.Config) { c.DailyTokens = 30 }, openaicompat.Options{Now: func() time.Time { return now }})
	var got tagAnswer
	ask := func() error {
		_, err := c.ChatJSON(context.Background(), openaicompat.ChatRequest{User: "x", Schema: schema(t)}, &got)
		return err
	}
	for i := range 2 {
		if err := ask(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	err := ask()
	var ue *openaicompat.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, openaicompat.ErrUnavailable) {
		t.Fatalf("third call: err = %v, want the budget's UnavailableError", err)
	}
	if want := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC); !ue.RetryAt.Equal(want) {
		t.Errorf("RetryAt = %v, want %v", ue.RetryAt, want)
	}
	if f.calls.Load() != 2 {
		t.Errorf("server saw %d calls, want 2 (the third is refused before calling)", f.calls.Load())
	}
	now = now.Add(2 * time.Hour) // the next UTC day
	if err := ask(); err != nil {
		t.Fatalf("next day: %v", err)
	}
	if c.Spent() != 15 {
		t.Errorf("spent = %d, want 15", c.Spent())
	}
}

func TestConcurrencyBound(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		inFlight.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\"tags\":[],\"topics\":[]}"}}],"usage":{"total_tokens":1}}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/v1", func(c *openaicompat.Config) { c.MaxConcurrency = 2 }, openaicompat.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var got tagAnswer
			if _, err := c.ChatJSON(context.Background(), openaicompat.ChatRequest{User: "x", Schema: schema(t)}, &got); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak in flight = %d, want ≤ 2", p)
	}
}

func TestEmbeddings(t *testing.T) {
	_, base := serve(t, reply{embedDims: 4})
	reg := prometheus.NewRegistry()
	m, err := openaicompat.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, base, nil, openaicompat.Options{Metrics: m})
	e, err := c.Embedder(4)
	if err != nil {
		t.Fatal(err)
	}
	if info := e.Info(); info.Name != "openai" || info.Model != "embed-model" || info.Dim != 4 || info.Lexical {
		t.Errorf("info = %+v", info)
	}
	vecs, err := e.Embed(context.Background(), []string{"один", "two"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 2 {
		t.Fatalf("%d vectors", len(vecs))
	}
	for i, v := range vecs {
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d has norm² %v, want 1", i, n)
		}
	}
	if got := testutil.ToFloat64(m.Calls.WithLabelValues("openai", "embed", "ok")); got != 1 {
		t.Errorf("calls{ok} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Tokens.WithLabelValues("openai")); got != 7 {
		t.Errorf("tokens = %v, want 7", got)
	}

	wrong, err := c.Embedder(8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Embed(context.Background(), []string{"x"}); !errors.Is(err, openaicompat.ErrRejected) {
		t.Errorf("dimension mismatch: err = %v, want ErrRejected", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := openaicompat.Config{BaseURL: "ftp://x", Timeout: 0, MaxConcurrency: 0, RPS: 0, MaxRetries: -1, DailyTokens: -1}
	err := cfg.Validate()
	for _, v := range []string{"TGFLOW_OPENAI_BASE_URL", "TGFLOW_OPENAI_TIMEOUT", "TGFLOW_OPENAI_MAX_CONCURRENCY", "TGFLOW_OPENAI_RPS", "TGFLOW_OPENAI_MAX_RETRIES", "TGFLOW_OPENAI_DAILY_TOKENS"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("Validate does not name %s: %v", v, err)
		}
	}
	if _, err := openaicompat.New(openaicompat.Config{}, openaicompat.Options{}); !errors.Is(err, openaicompat.ErrNotConfigured) {
		t.Errorf("New without a base URL: %v", err)
	}
}
