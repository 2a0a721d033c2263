package vision_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/openaicompat"
	"github.com/tgflow/tgflow/services/vision"
)

// parsed is a posts.parsed fact of post ch/msg with media.
func parsed(ch, msg int64, text string, m ...events.Media) events.Event {
	p := newPost(ch, msg, m...)
	p.Text = text
	return events.PostEvent(&events.PostParsed{Post: *p})
}

func memoryPut(t *testing.T, st *media.Memory, data []byte) string {
	t.Helper()
	sha, _, err := st.Put(context.Background(), bytes.NewReader(data), media.Meta{MIME: "image/jpeg"})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return sha
}

func memoryHandler(t *testing.T, st *media.Memory, desc vision.Describer) *vision.Handler {
	t.Helper()
	a := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: st, Describer: desc, Index: vision.NewIndex()})
	h, err := vision.NewHandler(a)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestStageContract(t *testing.T) {
	st := media.NewMemory(0)
	sha := memoryPut(t, st, encodeJPEG(t, scene(3, 320, 240), 85))
	inputs := []events.Event{
		parsed(1, 1, "с картинкой", photo(sha)),
		parsed(1, 2, "без картинок"),
	}
	if vision.ReadsEdits() {
		p := newPost(1, 1, photo(sha))
		p.EditDate = 1_800_000_000
		inputs = append(inputs, events.New(events.ProducerIngest, &events.PostEdited{Post: *p, PreviousVersion: 0}, p.Date, "1800000000"))
	}
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerVision,
		Router:   func(t *testing.T) *worker.Router { return memoryHandler(t, st, nil).Router() },
		Inputs:   inputs,
	})
}

// TestHandlerOutputs: one fact for a post with an image, none for a post without.
func TestHandlerOutputs(t *testing.T) {
	st := media.NewMemory(0)
	sha := memoryPut(t, st, encodeJPEG(t, scene(4, 320, 240), 85))
	p, err := worker.NewPipeline(topology.ConsumerVision, memoryHandler(t, st, nil).Router(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   events.Event
		want int
	}{
		{"photo", parsed(1, 1, "", photo(sha)), 1},
		{"text only", parsed(1, 2, "просто текст"), 0},
		{"video without a stored thumbnail", parsed(1, 3, "", events.Media{Kind: events.MediaVideo, MIME: "video/mp4"}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := p.Handle(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != tt.want {
				t.Fatalf("%d outputs, want %d", len(out), tt.want)
			}
			for _, o := range out {
				f, ok := o.Data.(*events.PostVisionAnalyzed)
				if !ok || len(f.Items) != 1 || f.Items[0].MediaSHA256 != sha || f.Items[0].PHash == "" {
					t.Fatalf("output %+v, want a fact with the photo analysed", o.Data)
				}
			}
		})
	}
}

// downDescriber is a provider that does not answer.
type downDescriber struct{}

func (downDescriber) Describe(context.Context, vision.Image) (vision.Description, error) {
	return vision.Description{}, &openaicompat.UnavailableError{Reason: "connection refused"}
}
func (downDescriber) Name() string  { return "fake" }
func (downDescriber) Model() string { return "down" }

// TestProviderUnavailableIsRetried: a provider that does not answer fails the post as
// transient (retried later), and publishes nothing.
func TestProviderUnavailableIsRetried(t *testing.T) {
	st := media.NewMemory(0)
	sha := memoryPut(t, st, encodeJPEG(t, scene(5, 320, 240), 85))
	p, err := worker.NewPipeline(topology.ConsumerVision, memoryHandler(t, st, downDescriber{}).Router(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Handle(context.Background(), parsed(1, 1, "", photo(sha)))
	if !errors.Is(err, openaicompat.ErrUnavailable) || worker.Classify(err) != worker.ClassTransient {
		t.Fatalf("err %v (class %s), want a transient error wrapping ErrUnavailable", err, worker.Classify(err))
	}
	if len(out) != 0 {
		t.Fatalf("%d outputs for a failed post", len(out))
	}
}

func TestStageConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"defaults", map[string]string{}, ""},
		{"openai without a base url", map[string]string{"TGFLOW_VISION_PROVIDER": "openai", "TGFLOW_OPENAI_CHAT_MODEL": "m"}, "TGFLOW_OPENAI_BASE_URL"},
		{"openai without a model", map[string]string{"TGFLOW_VISION_PROVIDER": "openai", "TGFLOW_OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, "TGFLOW_VISION_MODEL"},
		{"openai", map[string]string{"TGFLOW_VISION_PROVIDER": "openai", "TGFLOW_OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "TGFLOW_VISION_MODEL": "m"}, ""},
		{"unknown provider", map[string]string{"TGFLOW_VISION_PROVIDER": "gpu"}, "TGFLOW_VISION_PROVIDER"},
		{"zero threshold", map[string]string{"TGFLOW_VISION_NEAR_THRESHOLD": "0"}, "TGFLOW_VISION_NEAR_THRESHOLD"},
		{"threshold too wide", map[string]string{"TGFLOW_VISION_NEAR_THRESHOLD": "33"}, "TGFLOW_VISION_NEAR_THRESHOLD"},
		{"linking off", map[string]string{"TGFLOW_VISION_NEAR_THRESHOLD": "-1"}, ""},
		{"no concurrency", map[string]string{"TGFLOW_VISION_CONCURRENCY": "0"}, "TGFLOW_VISION_CONCURRENCY"},
		{"no max images", map[string]string{"TGFLOW_VISION_MAX_IMAGES": "0"}, "TGFLOW_VISION_MAX_IMAGES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg vision.StageConfig
			err := config.Load(&cfg, tt.env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
	var cfg vision.StageConfig
	if err := config.Load(&cfg, map[string]string{"TGFLOW_VISION_OCR": "false"}); err != nil {
		t.Fatal(err)
	}
	lib := cfg.Library()
	if want := (vision.Config{MaxImages: vision.DefaultMaxImages, MaxBytes: vision.DefaultMaxBytes, MaxPixels: vision.DefaultMaxPixels,
		NearThreshold: vision.DefaultNearThreshold, DisableOCR: true}); lib != want {
		t.Fatalf("library config %+v, want %+v", lib, want)
	}
}

// logFact is one posts.vision.analyzed fact read back from the log.
type logFact struct {
	seq  uint64
	fact *events.PostVisionAnalyzed
}

// analyzedFacts reads every posts.vision.analyzed fact of the log, by post key.
func analyzedFacts(t *testing.T, js jetstream.JetStream) map[string][]logFact {
	t.Helper()
	ctx := ctxT(t)
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]logFact{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		if !strings.HasPrefix(m.Subject, "posts.vision.analyzed.") {
			continue
		}
		ev, err := events.Default.Decode(events.Header(m.Header), m.Data)
		if err != nil {
			t.Fatalf("decode %d: %v", seq, err)
		}
		f := ev.Data.(*events.PostVisionAnalyzed)
		out[f.Key()] = append(out[f.Key()], logFact{seq: seq, fact: f})
	}
	return out
}

func key(ch, msg int64) string { return post(ch, msg).Key() }

// TestStageOnTheLog runs the stage on an embedded server with its media in the real object
// store: one posts.vision.analyzed per post with images and none for a post without; a
// re-encoded copy in another channel's later post links to the first (across a restart,
// through the replayed index, and live, through the index following the log); the text
// of an image is recognised; nothing is dead-lettered and a restart publishes no second
// fact.
func TestStageOnTheLog(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	obs, err := env.JS.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	store, err := media.NewStore(obs, media.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	publishPosts := func(evs ...events.Event) {
		t.Helper()
		if dups, err := pub.Publish(ctx, evs); err != nil || dups != 0 {
			t.Fatalf("publish: dups=%d err=%v", dups, err)
		}
	}

	envVars := map[string]string{"TGFLOW_VISION_CONCURRENCY": "3"}
	ocr := true
	if _, err := vision.TesseractStatus(ctx, "", ""); err != nil {
		if testenv.InCI() {
			t.Fatalf("tesseract is required: %v", err)
		}
		t.Logf("OCR off: %v", err)
		ocr = false
		envVars["TGFLOW_VISION_OCR"] = "false"
	}
	var cfg vision.StageConfig
	if err := config.Load(&cfg, envVars); err != nil {
		t.Fatal(err)
	}
	run := func() (stop func()) {
		t.Helper()
		reg := prometheus.NewRegistry()
		d := services.Deps{JS: env.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
		st, err := vision.NewStage(ctx, d, cfg, store, nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := st.Run(rctx); err != nil {
				t.Error(err)
			}
		})
		return func() { cancel(); wg.Wait() }
	}
	haveFact := func(k string) func() bool {
		return func() bool { return len(analyzedFacts(t, env.JS)[k]) > 0 }
	}

	// Phase 1: a picture, a text image, a post without images, another picture.
	pic := scene(11, 640, 480)
	picSHA := put(t, store, encodeJPEG(t, pic, 92))
	otherSHA := put(t, store, encodeJPEG(t, scene(12, 640, 480), 90))
	var textSHA string
	if ocr {
		face := loadFont(t, 36)
		textSHA = put(t, store, encodePNG(t, renderText(face, []string{"Привет, мир", "Hello tgflow"}, color.Black, color.White)))
	} else {
		textSHA = put(t, store, encodePNG(t, scene(13, 400, 200)))
	}
	publishPosts(
		parsed(1, 1, "оригинал", photo(picSHA)),
		parsed(1, 2, "скриншот", photo(textSHA)),
		parsed(1, 3, "только текст"),
		parsed(2, 2, "другая картинка", photo(otherSHA)),
	)
	// More posts, so that the stop below finds some of them not yet analysed.
	var extras []events.Event
	for i := range 6 {
		sha := put(t, store, encodeJPEG(t, scene(uint64(100+i), 320, 240), 85))
		extras = append(extras, parsed(6, int64(i+1), "ещё", photo(sha)))
	}
	publishPosts(extras...)
	stop := run()
	for _, k := range []string{key(1, 1), key(1, 2), key(2, 2)} {
		natstest.Eventually(t, 60*time.Second, "fact of "+k, haveFact(k))
	}
	stop()

	// Phase 2, after a restart: a re-encoded, resized copy in another channel links to the
	// first post through the index replayed from the log.
	copySHA := put(t, store, encodePNG(t, resize(pic, 320, 240)))
	publishPosts(parsed(3, 1, "перепост", photo(copySHA)))
	stop = run()
	defer func() { stop() }()
	natstest.Eventually(t, 60*time.Second, "fact of the copy", haveFact(key(3, 1)))

	// Phase 3, live: a new picture, then (once its fact is in the log) a copy of it in
	// another channel, linked through the index following the log.
	pic2 := scene(21, 640, 480)
	pic2SHA := put(t, store, encodeJPEG(t, pic2, 90))
	publishPosts(parsed(4, 1, "новая", photo(pic2SHA)))
	natstest.Eventually(t, 60*time.Second, "fact of the new picture", haveFact(key(4, 1)))
	copy2SHA := put(t, store, encodeJPEG(t, pic2, 40))
	publishPosts(parsed(5, 1, "копия новой", photo(copy2SHA)))
	natstest.Eventually(t, 60*time.Second, "fact of the live copy", haveFact(key(5, 1)))

	natstest.Eventually(t, 30*time.Second, "vision idle", func() bool {
		return natstest.ConsumerIdle(env.JS, topology.ConsumerVision)
	})

	facts := analyzedFacts(t, env.JS)
	want := map[string]string{ // post → the post its image links to ("" for none)
		key(1, 1): "", key(1, 2): "", key(2, 2): "", key(3, 1): key(1, 1), key(4, 1): "", key(5, 1): key(4, 1),
	}
	for i := range 6 {
		want[key(6, int64(i+1))] = ""
	}
	for k, linked := range want {
		fs := facts[k]
		if len(fs) != 1 {
			t.Errorf("post %s: %d posts.vision.analyzed, want exactly one", k, len(fs))
			continue
		}
		f := fs[0].fact
		if len(f.Items) != 1 || f.Items[0].PHash == "" {
			t.Errorf("post %s: items %+v, want one analysed image", k, f.Items)
			continue
		}
		nd := f.Items[0].NearDuplicateOf
		switch {
		case linked == "" && nd != nil:
			t.Errorf("post %s links to %+v, want no link", k, nd)
		case linked != "" && nd == nil:
			t.Errorf("post %s is not linked, want a near-duplicate of %s", k, linked)
		case linked != "" && nd.Key() != linked:
			t.Errorf("post %s links to %s, want %s", k, nd.Key(), linked)
		}
	}
	if nd := facts[key(3, 1)]; len(nd) == 1 && nd[0].fact.Items[0].NearDuplicateOf != nil && nd[0].fact.Items[0].NearDuplicateOf.MediaSHA256 != picSHA {
		t.Errorf("the copy links to image %s, want %s", nd[0].fact.Items[0].NearDuplicateOf.MediaSHA256, picSHA)
	}
	if n := len(facts[key(1, 3)]); n != 0 {
		t.Errorf("the post without images has %d posts.vision.analyzed, want none", n)
	}
	if len(facts) != len(want) {
		t.Errorf("facts for %d posts, want %d", len(facts), len(want))
	}
	if ocr {
		if fs := facts[key(1, 2)]; len(fs) == 1 {
			text := fs[0].fact.Items[0].OCRText
			if !strings.Contains(text, "Привет") || !strings.Contains(text, "tgflow") {
				t.Errorf("OCR text %q, want the rendered lines", text)
			}
			t.Logf("OCR text %q", text)
		}
	}
	dlq, err := env.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(ctx); err != nil || di.State.Msgs != 0 {
		t.Fatalf("DLQ holds %v messages (err %v)", di.State.Msgs, err)
	}
	if pub.Duplicates() != 0 {
		t.Fatalf("publisher counted %d duplicates", pub.Duplicates())
	}

}

// TestIndexFeedReplaysThenFollows: the feed is ready only once the index holds every fact
// the log had when it started, and then indexes new facts as they land.
func TestIndexFeedReplaysThenFollows(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	fact := func(msg int64) events.Event {
		p := newPost(7, msg)
		f := &events.PostVisionAnalyzed{PostRef: p.PostRef, Rev: events.Rev{Version: p.Version()}, Provider: vision.Provider,
			Items: []events.VisionItem{{MediaSHA256: fmt.Sprintf("%064x", msg), PHash: vision.FormatHash(r.Uint64())}}, AnalyzedAt: p.Date}
		return events.New(events.ProducerVision, f, p.Date)
	}
	const n = 500
	var facts []events.Event
	for i := range n {
		facts = append(facts, fact(int64(i+1)))
	}
	if dups, err := pub.Publish(ctx, facts); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
	s, err := env.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}

	ix := vision.NewIndex()
	feed := vision.NewIndexFeed(env.JS, ix, slog.New(slog.DiscardHandler))
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { feed.Run(rctx) })
	defer func() { cancel(); wg.Wait() }()
	select {
	case <-feed.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("the feed is not ready after 30 s")
	}
	if ix.Len() != n || ix.Seq() != info.State.LastSeq {
		t.Fatalf("ready with %d images up to seq %d, want %d up to %d", ix.Len(), ix.Seq(), n, info.State.LastSeq)
	}
	if dups, err := pub.Publish(ctx, []events.Event{fact(n + 1)}); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
	natstest.Eventually(t, 10*time.Second, "the live fact indexed", func() bool { return ix.Len() == n+1 })
}

// TestStageWaitsForTheReplay: a stage starting on a log with many facts analyses nothing
// before its index holds them all, so a post whose picture was seen in the log's last
// fact is linked to it.
func TestStageWaitsForTheReplay(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	obs, err := env.JS.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	store, err := media.NewStore(obs, media.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := encodeJPEG(t, scene(31, 640, 480), 90)
	img, format, err := vision.Decode(data, vision.DefaultMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := vision.AnalyzeLocal(img, format, 1)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	const n = 3000
	var in []events.Event
	for i := range n {
		p := newPost(8, int64(i+1))
		h := r.Uint64()
		if i == n-1 {
			h = loc.PHash // the last fact of the log has the picture
		}
		f := &events.PostVisionAnalyzed{PostRef: p.PostRef, Rev: events.Rev{Version: p.Version()}, Provider: vision.Provider,
			Items: []events.VisionItem{{MediaSHA256: fmt.Sprintf("%064x", i+1), PHash: vision.FormatHash(h)}}, AnalyzedAt: p.Date}
		in = append(in, events.New(events.ProducerVision, f, p.Date))
	}
	sha := put(t, store, encodePNG(t, resize(img, 320, 240)))
	in = append(in, parsed(9, 1, "", photo(sha)))
	if dups, err := pub.Publish(ctx, in); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}

	var cfg vision.StageConfig
	if err := config.Load(&cfg, map[string]string{"TGFLOW_VISION_OCR": "false"}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: env.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
	st, err := vision.NewStage(ctx, d, cfg, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := st.Run(rctx); err != nil {
			t.Error(err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	natstest.Eventually(t, 60*time.Second, "the post analysed", func() bool { return len(analyzedFacts(t, env.JS)[key(9, 1)]) > 0 })
	f := analyzedFacts(t, env.JS)[key(9, 1)][0].fact
	if nd := f.Items[0].NearDuplicateOf; nd == nil || nd.Key() != key(8, n) {
		t.Fatalf("linked to %+v, want post %s (the log's last fact)", nd, key(8, n))
	}
}

// TestSpecBuildsFromTheEnvironment: the spec builds the stage from TGFLOW_* variables with
// the media store of the topology, and the stage analyses a post; a bad variable is named.
func TestSpecBuildsFromTheEnvironment(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: env.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg,
		Env: map[string]string{"TGFLOW_VISION_OCR": "false", "TGFLOW_VISION_MAX_IMAGES": "0"}}
	if _, err := vision.Spec().New(ctx, d); err == nil || !strings.Contains(err.Error(), "TGFLOW_VISION_MAX_IMAGES") {
		t.Fatalf("err %v, want one naming TGFLOW_VISION_MAX_IMAGES", err)
	}
	d.Env = map[string]string{"TGFLOW_VISION_OCR": "false"}
	svc, err := vision.Spec().New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := env.JS.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	store, err := media.NewStore(obs, media.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sha := put(t, store, encodeJPEG(t, scene(41, 320, 240), 85))
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dups, err := pub.Publish(ctx, []events.Event{parsed(10, 1, "", photo(sha))}); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(rctx); err != nil {
			t.Error(err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	natstest.Eventually(t, 60*time.Second, "the post analysed", func() bool { return len(analyzedFacts(t, env.JS)[key(10, 1)]) == 1 })
	if it := analyzedFacts(t, env.JS)[key(10, 1)][0].fact.Items[0]; it.Reason != "" || it.PHash == "" {
		t.Fatalf("item %+v, want the image read from the media store and hashed", it)
	}
}
