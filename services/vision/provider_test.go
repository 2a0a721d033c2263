package vision_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/openaicompat"
	"github.com/tgflow/tgflow/services/vision"
)

// fakeChat speaks the OpenAI chat completions wire format: every request is answered with
// the scripted status and assistant content; request bodies are kept.
type fakeChat struct {
	t       *testing.T
	status  int
	content string
	mu      sync.Mutex
	bodies  []map[string]any
}

func (f *fakeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read request: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("request is not JSON: %v", err)
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		fmt.Fprint(w, `{"error":{"message":"scripted","type":"server_error","code":"scripted","param":null}}`)
		return
	}
	content, err := json.Marshal(f.content)
	if err != nil {
		f.t.Errorf("marshal: %v", err)
	}
	fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":%s}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`, content)
}

func newDescriber(t *testing.T, f *fakeChat) *vision.OpenAIDescriber {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := openaicompat.New(openaicompat.Config{
		BaseURL: srv.URL + "/v1", APIKey: config.Secret("sk-test"), ChatModel: "vision-model",
		Timeout: 5 * time.Second, MaxRetries: 0, MaxConcurrency: 2, RPS: 1000,
	}, openaicompat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := vision.NewOpenAIDescriber(c, "vision-model")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func labels(n int) string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf("%q", fmt.Sprint("label", i))
	}
	return "[" + strings.Join(l, ",") + "]"
}

func TestProviderDescribesEachImage(t *testing.T) {
	mem := media.NewMemory(1 << 24)
	sha, _, err := mem.Put(ctxT(t), readerOf(encodePNG(t, scene(9, 120, 90))), media.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	valid := `{"description":"A protest on a square.","labels":["Protest"," protest ","square"],"objects":["flag","crowd"],"scene":"street protest","is_meme":false,"nsfw":0.02}`
	tests := []struct {
		name         string
		status       int
		content      string
		wantErr      error
		wantProvErr  string
		wantLabels   []string
		wantNSFW     float64
		wantDescribe bool
	}{
		{name: "valid answer", content: valid, wantLabels: []string{"protest", "square"}, wantNSFW: 0.02, wantDescribe: true},
		{name: "more than 20 labels", content: `{"description":"x","labels":` + labels(21) + `,"objects":[],"scene":"","is_meme":false,"nsfw":0}`, wantProvErr: "invalid"},
		{name: "nsfw out of range", content: `{"description":"x","labels":[],"objects":[],"scene":"","is_meme":false,"nsfw":1.5}`, wantProvErr: "invalid"},
		{name: "not json", content: "I cannot see images.", wantProvErr: "invalid"},
		{name: "nothing said", content: `{"description":"  ","labels":[],"objects":[],"scene":"","is_meme":false,"nsfw":0}`, wantProvErr: "neither a description nor labels"},
		{name: "rejected", status: http.StatusBadRequest, wantProvErr: "rejected"},
		{name: "unavailable", status: http.StatusServiceUnavailable, wantErr: openaicompat.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeChat{t: t, status: tc.status, content: tc.content}
			d := newDescriber(t, f)
			a := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: mem, Describer: d})
			out, err := a.Analyze(ctxT(t), newPost(1, 1, photo(sha)))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := out.Validate(); err != nil {
				t.Fatal(err)
			}
			it := out.Items[0]
			if out.Provider != "openai" || out.Model != "vision-model" {
				t.Errorf("provider %q model %q", out.Provider, out.Model)
			}
			if it.PHash == "" || it.Format != "png" {
				t.Errorf("the local result is lost: %+v", it)
			}
			if tc.wantProvErr != "" {
				if !strings.Contains(it.ProviderError, tc.wantProvErr) || it.Description != "" || it.NSFW != nil {
					t.Errorf("item %+v, want provider error %q and no description", it, tc.wantProvErr)
				}
				return
			}
			if !tc.wantDescribe || it.Description != "A protest on a square." || it.Scene != "street protest" || it.IsMeme ||
				fmt.Sprint(it.Labels) != fmt.Sprint(tc.wantLabels) || fmt.Sprint(it.Objects) != "[flag crowd]" || it.NSFW == nil || *it.NSFW != tc.wantNSFW {
				t.Errorf("item %+v", it)
			}
			assertImageSent(t, f, "data:image/png;base64,")
		})
	}
}

// assertImageSent checks the request carried the image as a data URI and asked for the
// image_description schema.
func assertImageSent(t *testing.T, f *fakeChat, prefix string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(f.bodies))
	}
	raw, err := json.Marshal(f.bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.Contains(s, prefix) || !strings.Contains(s, `"image_description"`) {
		t.Errorf("request lacks the image data URI or the schema: %.300s", s)
	}
}

// TestProviderGetsLargeImagesScaledDown: a picture larger than 1024 px is sent as a JPEG
// scaled down, a small one as its own bytes.
func TestProviderGetsLargeImagesScaledDown(t *testing.T) {
	mem := media.NewMemory(1 << 26)
	valid := `{"description":"d","labels":["a"],"objects":[],"scene":"s","is_meme":true,"nsfw":0}`
	tests := []struct {
		name       string
		data       []byte
		wantPrefix string
	}{
		{"large png", encodePNG(t, scene(5, 1600, 1200)), "data:image/jpeg;base64,"},
		{"small gif", encodeGIF(t, paletted(twoTone(48, 32))), "data:image/gif;base64,"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sha, _, err := mem.Put(ctxT(t), readerOf(tc.data), media.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeChat{t: t, content: valid}
			a := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: mem, Describer: newDescriber(t, f)})
			out, err := a.Analyze(ctxT(t), newPost(1, 1, photo(sha)))
			if err != nil {
				t.Fatal(err)
			}
			if !out.Items[0].IsMeme {
				t.Errorf("item %+v, want is_meme from the answer", out.Items[0])
			}
			assertImageSent(t, f, tc.wantPrefix)
		})
	}
}
