package embedder_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/embedder"
)

func enriched(t *testing.T, msg int64, text string) (events.Event, *events.PostEnriched) {
	t.Helper()
	p := &events.PostEnriched{
		PostRef:  events.PostRef{ChannelID: 1234567890, MessageID: msg},
		Rev:      events.Rev{Version: 1761991200, Revision: 1},
		Tags:     []string{},
		PostedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		Text:     text,
	}
	in := events.New("test", p, p.PostedAt, "v0")
	return in, p
}

func handle(t *testing.T, h *embedder.Handler, in events.Event, p *events.PostEnriched) *events.PostEmbedded {
	t.Helper()
	out, err := h.Handle(stageCtx(), in, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d outputs, want exactly 1", len(out))
	}
	if out[0].Type != events.TypePostEmbedded || out[0].Producer() != events.ProducerEmbedder {
		t.Fatalf("output %s from %s", out[0].Type, out[0].Producer())
	}
	e := out[0].Data.(*events.PostEmbedded)
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}

// stageCtx is the context the runtime gives the embedder's handlers.
func stageCtx() context.Context {
	return worker.WithProducer(context.Background(), events.ProducerEmbedder)
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

func TestHashingEmbedding(t *testing.T) {
	e, err := hashing.New(hashing.Config{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	h, err := embedder.NewHandler(e, 8, time.Millisecond, nil, topics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	in, p := enriched(t, 1, "Вышел Go 1.23 с итераторами")
	got := handle(t, h, in, p)
	if got.Provider != "hashing" || got.Dim != 256 || len(got.Vector) != 256 || !got.Lexical || got.EmbedderVersion == "" {
		t.Errorf("space = %s/%s/%s/%d lexical=%v", got.Provider, got.Model, got.EmbedderVersion, got.Dim, got.Lexical)
	}
	if got.Rev != p.Rev || got.PostRef != p.PostRef {
		t.Errorf("rev/ref not carried: %+v %+v", got.Rev, got.PostRef)
	}
	out1, _ := h.Handle(stageCtx(), in, p)
	out2, _ := h.Handle(stageCtx(), in, p)
	if out1[0].ID != out2[0].ID {
		t.Error("the same input gave two output ids")
	}
	// A bare photo still gets its one vector.
	in2, p2 := enriched(t, 2, "")
	if v := handle(t, h, in2, p2); len(v.Vector) != 256 {
		t.Errorf("empty post: %d components", len(v.Vector))
	}
}

// TestTranslationsEmbedClose is the acceptance check of issue 8: a post and its English
// translation are closer to each other than to an unrelated post, with the default (USE)
// embedder.
func TestTranslationsEmbedClose(t *testing.T) {
	var e embed.Embedder = usetest.Load(t)
	h, err := embedder.NewHandler(e, 8, time.Millisecond, nil, topics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	embedText := func(msg int64, text string) *events.PostEmbedded {
		in, p := enriched(t, msg, text)
		return handle(t, h, in, p)
	}
	ru := embedText(1, "Вышел Go 1.23: итераторы по функциям в range, новая телеметрия и ускорение компилятора.")
	en := embedText(2, "Go 1.23 is out: range over function iterators, new telemetry and a faster compiler.")
	other := embedText(3, "Сборная Аргентины обыграла Бразилию в финале чемпионата со счётом 2:1.")
	if ru.Provider != "use" || ru.Dim != 512 || ru.Lexical {
		t.Errorf("space = %s/%d lexical=%v", ru.Provider, ru.Dim, ru.Lexical)
	}
	same, diff1, diff2 := cosine(ru.Vector, en.Vector), cosine(ru.Vector, other.Vector), cosine(en.Vector, other.Vector)
	t.Logf("cos(ru,en)=%.3f cos(ru,other)=%.3f cos(en,other)=%.3f", same, diff1, diff2)
	if same <= diff1 || same <= diff2 {
		t.Errorf("the translation is not the nearest: cos(ru,en)=%.3f, cos(ru,other)=%.3f, cos(en,other)=%.3f", same, diff1, diff2)
	}
}
