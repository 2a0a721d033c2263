package chaintest_test

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/albums"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/importer"
	"github.com/tgflow/tgflow/services/vision"
	"github.com/tgflow/tgflow/testdata/sample"
)

// TestSampleAlbumOfSignsIsReadByOCR imports the bundled sample as `tgflow dev --sample`
// does and runs the vision and albums stages on it: the album of signs is assembled
// complete, with the Russian and the English text OCR read from its two pictures.
func TestSampleAlbumOfSignsIsReadByOCR(t *testing.T) {
	if _, err := exec.LookPath("tesseract"); err != nil {
		if testenv.InCI() {
			t.Fatalf("tesseract is required (apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng): %v", err)
		}
		t.Skipf("skipping: tesseract not installed: %v", err)
	}
	e := natstest.Start(t)
	ctx := context.Background()
	x, err := export.OpenFS(sample.FS, sample.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	im, err := importer.New(ctx, e.JS, slog.New(slog.DiscardHandler), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Import(ctx, x); err != nil {
		t.Fatal(err)
	}
	runSpecs(t, e, map[string]string{"TGFLOW_ALBUMS_TICK": "200ms"}, vision.Spec(), albums.Spec())
	idle(t, e.JS, 120*time.Second, topology.ConsumerVision, topology.ConsumerAlbums)

	s, ok := events.Lookup(events.TypeAlbumAssembled)
	if !ok {
		t.Fatal("albums.assembled is not registered")
	}
	var signs *events.AlbumAssembled
	all := natstest.Facts(t, e.JS, s.Filter())
	for _, ev := range all {
		a := ev.Data.(*events.AlbumAssembled)
		if strings.Contains(a.Caption, "New signs at the stop") {
			signs = a
		}
	}
	if len(all) != 4 || signs == nil {
		t.Fatalf("%d albums assembled (want the sample's 4), the signs among them: %v", len(all), signs != nil)
	}
	t.Logf("signs album: outcome %s, items %v, OCR %q", signs.Outcome, signs.MessageIDs, signs.OCRText)
	if signs.Outcome != events.AlbumComplete || signs.ItemCount != 2 || len(signs.Missing) != 0 {
		t.Errorf("signs album %+v, want complete with 2 items", signs)
	}
	for _, want := range []string{"Трамвай 7: Садовая улица", "Интервал движения 10 минут", "Tram 7: Garden Street", "Runs every 10 minutes"} {
		if !strings.Contains(signs.OCRText, want) {
			t.Errorf("OCR text %q lacks %q", signs.OCRText, want)
		}
	}
	// The pictures themselves carry their text in posts.vision.analyzed.
	v, ok := events.Lookup(events.TypePostVisionAnalyzed)
	if !ok {
		t.Fatal("posts.vision.analyzed is not registered")
	}
	read := 0
	for _, ev := range natstest.Facts(t, e.JS, v.Filter()) {
		p := ev.Data.(*events.PostVisionAnalyzed)
		for _, img := range p.Items {
			if strings.Contains(img.OCRText, "Garden Street") || strings.Contains(img.OCRText, "Садовая") {
				read++
			}
		}
	}
	if read != 2 {
		t.Errorf("%d images read as signs, want 2", read)
	}
}
