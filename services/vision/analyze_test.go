package vision_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image/color"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/vision"
)

// newStore is the real media store on an embedded JetStream server.
func newStore(t *testing.T) *media.Store {
	t.Helper()
	env := natstest.Start(t)
	obs, err := env.JS.ObjectStore(ctxT(t), media.Bucket)
	if err != nil {
		t.Fatalf("media bucket: %v", err)
	}
	st, err := media.NewStore(obs, media.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func put(t *testing.T, st *media.Store, data []byte) string {
	t.Helper()
	sha, _, err := st.Put(ctxT(t), bytes.NewReader(data), media.Meta{})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return sha
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newPost(ch, msg int64, m ...events.Media) *events.Post {
	return &events.Post{PostRef: post(ch, msg), Date: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Media: m}
}

func photo(sha string) events.Media { return events.Media{Kind: events.MediaPhoto, SHA256: sha} }

func newAnalyzer(t *testing.T, cfg vision.Config, opts vision.Options) *vision.Analyzer {
	t.Helper()
	opts.Now = func() time.Time { return time.Date(2026, 11, 1, 12, 5, 0, 0, time.UTC) }
	a, err := vision.NewAnalyzer(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func itemOf(t *testing.T, f *events.PostVisionAnalyzed, sha string) events.VisionItem {
	t.Helper()
	for _, it := range f.Items {
		if it.MediaSHA256 == sha {
			return it
		}
	}
	t.Fatalf("no item for %s in %+v", sha, f.Items)
	return events.VisionItem{}
}

// TestAnalyzePolicyAndItems runs the whole analysis on the real object store: what is an
// image, one item per distinct image, OCR text, missing and broken objects recorded.
func TestAnalyzePolicyAndItems(t *testing.T) {
	st := newStore(t)
	face := loadFont(t, 28)
	ocr := requireTesseract(t)
	textPNG := encodePNG(t, renderText(face, []string{"Митинг в Москве", "Election day"}, color.Black, color.White))
	gifData := encodeGIF(t, paletted(twoTone(48, 32)))
	broken := []byte("\x89PNG\r\n\x1a\n not really")
	textSHA, gifSHA, brokenSHA := put(t, st, textPNG), put(t, st, gifData), put(t, st, broken)
	pdfSHA := put(t, st, []byte("%PDF-1.7"))
	missingSHA := shaOf([]byte("never stored"))

	p := newPost(10, 1,
		photo(textSHA),
		events.Media{Kind: events.MediaDocument, MIME: "image/gif", SHA256: gifSHA},
		events.Media{Kind: events.MediaDocument, MIME: "application/pdf", SHA256: pdfSHA},
		events.Media{Kind: events.MediaVideo, MIME: "video/mp4", SHA256: pdfSHA},
		events.Media{Kind: events.MediaPhoto, Skipped: "size cap"},
		photo(missingSHA),
		photo(brokenSHA),
		photo(textSHA), // the same picture twice: one item
	)
	p.EditDate = 1700000000
	a := newAnalyzer(t, vision.Config{}, vision.Options{Objects: st, OCR: ocr})
	f, err := a.Analyze(ctxT(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("fact invalid: %v", err)
	}
	if len(f.Items) != 4 {
		t.Fatalf("%d items, want 4 (text png, gif document, missing, broken): %+v", len(f.Items), f.Items)
	}
	if f.PostRef != p.PostRef || f.Version != 1700000000 || f.Provider != vision.Provider || f.Model != vision.Model || f.AnalyzedAt.IsZero() {
		t.Errorf("header %+v %+v %s %s %s", f.PostRef, f.Rev, f.Provider, f.Model, f.AnalyzedAt)
	}
	txt := itemOf(t, f, textSHA)
	if txt.Format != "png" || txt.Width == 0 || len(txt.PHash) != 16 || len(txt.DHash) != 16 || len(txt.Colors) == 0 || txt.Error != "" {
		t.Errorf("text image item %+v", txt)
	}
	if !strings.Contains(txt.OCRText, "Митинг в Москве") || !strings.Contains(txt.OCRText, "Election day") || txt.OCRConfidence < 0.5 {
		t.Errorf("OCR %q confidence %.2f, want both lines", txt.OCRText, txt.OCRConfidence)
	}
	if g := itemOf(t, f, gifSHA); g.Format != "gif" || g.Width != 48 || g.Colors[0] != "#d02020" {
		t.Errorf("gif document item %+v", g)
	}
	if m := itemOf(t, f, missingSHA); m.Reason != vision.ReasonMissing || m.Error == "" || m.PHash != "" {
		t.Errorf("missing item %+v, want reason missing", m)
	}
	if b := itemOf(t, f, brokenSHA); b.Reason != vision.ReasonDecode || b.Error == "" {
		t.Errorf("broken item %+v, want reason decode", b)
	}

	if _, err := a.Analyze(ctxT(t), newPost(10, 2, events.Media{Kind: events.MediaDocument, MIME: "application/pdf", SHA256: pdfSHA})); !errors.Is(err, vision.ErrNoImages) {
		t.Errorf("post without images: err = %v, want ErrNoImages", err)
	}
	if _, err := a.Analyze(ctxT(t), newPost(10, 3)); !errors.Is(err, vision.ErrNoImages) {
		t.Errorf("post without media: err = %v, want ErrNoImages", err)
	}
}

func TestAnalyzeLimits(t *testing.T) {
	st := newStore(t)
	a1, a2 := put(t, st, encodePNG(t, scene(1, 64, 64))), put(t, st, encodePNG(t, scene(2, 64, 64)))
	tests := []struct {
		name       string
		cfg        vision.Config
		media      []events.Media
		wantReason []string
	}{
		{"max images", vision.Config{MaxImages: 1, DisableOCR: true}, []events.Media{photo(a1), photo(a2)}, []string{"", vision.ReasonLimit}},
		{"declared size over the cap", vision.Config{MaxBytes: 100, DisableOCR: true}, []events.Media{{Kind: events.MediaPhoto, SHA256: a1, Size: 5000}}, []string{vision.ReasonTooLarge}},
		{"stored size over the cap", vision.Config{MaxBytes: 100, DisableOCR: true}, []events.Media{photo(a1)}, []string{vision.ReasonTooLarge}},
		{"pixels over the cap", vision.Config{MaxPixels: 64*64 - 1, DisableOCR: true}, []events.Media{photo(a1)}, []string{vision.ReasonDecode}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAnalyzer(t, tc.cfg, vision.Options{Objects: st})
			f, err := a.Analyze(ctxT(t), newPost(1, 1, tc.media...))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Items) != len(tc.wantReason) {
				t.Fatalf("%d items, want %d", len(f.Items), len(tc.wantReason))
			}
			for i, it := range f.Items {
				if it.Reason != tc.wantReason[i] {
					t.Errorf("items[%d] reason %q (%s), want %q", i, it.Reason, it.Error, tc.wantReason[i])
				}
			}
		})
	}
}

// failingStore is a store that cannot be reached.
type failingStore struct{}

var errStoreDown = errors.New("nats: no responders")

func (failingStore) Get(context.Context, string) (io.ReadCloser, media.Meta, error) {
	return nil, media.Meta{}, errStoreDown
}

func TestAnalyzeStoreDownFailsThePost(t *testing.T) {
	a := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: failingStore{}})
	_, err := a.Analyze(ctxT(t), newPost(1, 1, photo(shaOf([]byte("x")))))
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("err = %v, want the store's error (the stage retries)", err)
	}
}

func TestAnalyzeOCRUnavailableIsRecorded(t *testing.T) {
	mem := media.NewMemory(1 << 20)
	sha, _, err := mem.Put(ctxT(t), bytes.NewReader(encodePNG(t, scene(3, 80, 60))), media.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	ocr, err := vision.NewTesseract(vision.TesseractConfig{Binary: "/nonexistent/tesseract"})
	if err != nil {
		t.Fatal(err)
	}
	a := newAnalyzer(t, vision.Config{}, vision.Options{Objects: mem, OCR: ocr})
	f, err := a.Analyze(ctxT(t), newPost(1, 1, photo(sha)))
	if err != nil {
		t.Fatal(err)
	}
	it := f.Items[0]
	if !strings.Contains(it.OCRError, "OCR unavailable") || it.PHash == "" || it.Error != "" {
		t.Errorf("item %+v, want OCR unavailable and the rest analysed", it)
	}
}

func TestNewAnalyzerRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  vision.Config
		opts vision.Options
	}{
		{"no store", vision.Config{DisableOCR: true}, vision.Options{}},
		{"no OCR", vision.Config{}, vision.Options{Objects: failingStore{}}},
		{"bad threshold", vision.Config{DisableOCR: true, NearThreshold: 40}, vision.Options{Objects: failingStore{}}},
		{"bad colours", vision.Config{DisableOCR: true, Colors: 17}, vision.Options{Objects: failingStore{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := vision.NewAnalyzer(tc.cfg, tc.opts); !errors.Is(err, vision.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// TestAnalyzeIsDeterministic: the same post analysed twice gives the same fact (a
// redelivered message republishes what the first attempt published).
func TestAnalyzeIsDeterministic(t *testing.T) {
	mem := media.NewMemory(1 << 24)
	face := loadFont(t, 24)
	ocr := requireTesseract(t)
	var shas []string
	for _, data := range [][]byte{
		encodeJPEG(t, scene(11, 400, 300), 85),
		encodePNG(t, renderText(face, []string{"Повтор даёт тот же факт"}, color.Black, color.White)),
	} {
		sha, _, err := mem.Put(ctxT(t), bytes.NewReader(data), media.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, sha)
	}
	a := newAnalyzer(t, vision.Config{}, vision.Options{Objects: mem, OCR: ocr, Index: vision.NewIndex()})
	p := newPost(5, 5, photo(shas[0]), photo(shas[1]))
	first, err := a.Analyze(ctxT(t), p)
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.Analyze(ctxT(t), p)
	if err != nil {
		t.Fatal(err)
	}
	j1, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	j2, err := json.Marshal(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(j1, j2) {
		t.Errorf("two analyses differ:\n%s\n%s", j1, j2)
	}
}
