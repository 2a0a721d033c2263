package vision_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/services/vision"
)

// requireTesseract returns a recogniser; without tesseract and its languages the test fails
// under CI and skips otherwise.
func requireTesseract(t testing.TB) *vision.Tesseract {
	t.Helper()
	if _, err := vision.TesseractStatus(context.Background(), "", ""); err != nil {
		if testenv.InCI() {
			t.Fatalf("tesseract is required (apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng): %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	ocr, err := vision.NewTesseract(vision.TesseractConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return ocr
}

// ocrSamples are clean renders of known text, in Russian and English.
var ocrSamples = []struct {
	name  string
	lines []string
}{
	{"russian", []string{
		"Съешь же ещё этих мягких французских булок,",
		"да выпей чаю. Митинг в Москве начнётся в 12:00.",
		"Продажи выросли на 15 процентов за год.",
	}},
	{"english", []string{
		"The quick brown fox jumps over the lazy dog.",
		"Election results will be announced on Monday.",
		"Prices rose by 15 percent in one year.",
	}},
	{"mixed", []string{
		"Новости дня: Telegram channels",
		"Курс доллара и погода на завтра",
	}},
}

// TestOCRCharacterErrorRate renders known Russian and English text with DejaVu Sans and
// reads it back with Tesseract; the character error rate must be at most 5 %.
func TestOCRCharacterErrorRate(t *testing.T) {
	ocr := requireTesseract(t)
	face := loadFont(t, 28)
	var errSum, lenSum float64
	for _, s := range ocrSamples {
		t.Run(s.name, func(t *testing.T) {
			img := renderText(face, s.lines, color.Black, color.White)
			res, err := ocr.Recognize(ctxT(t), img)
			if err != nil {
				t.Fatalf("recognize: %v", err)
			}
			want := strings.Join(s.lines, "\n")
			rate := cer(res.Text, want)
			n := float64(len([]rune(want)))
			errSum += rate * n
			lenSum += n
			t.Logf("CER %.2f%% (confidence %.2f, %d words) got %q", 100*rate, res.Confidence, res.Words, res.Text)
			if rate > 0.05 {
				t.Errorf("CER %.2f%% > 5%%:\ngot  %q\nwant %q", 100*rate, res.Text, want)
			}
			if res.Confidence < 0.5 || res.Confidence > 1 {
				t.Errorf("confidence %.2f on a clean render, want in [0.5, 1]", res.Confidence)
			}
		})
	}
	if lenSum > 0 {
		t.Logf("overall CER %.2f%% over %.0f characters", 100*errSum/lenSum, lenSum)
	}
}

// TestOCRSmallCompressedText: screenshot-sized text (11 and 16 px) in grey on a tinted
// background, also after JPEG at quality 60, still reads at ≤ 5 % CER.
func TestOCRSmallCompressedText(t *testing.T) {
	ocr := requireTesseract(t)
	for _, size := range []float64{11, 16} {
		face := loadFont(t, size)
		for _, s := range ocrSamples[:2] {
			img := renderText(face, s.lines, color.RGBA{0x22, 0x22, 0x22, 0xff}, color.RGBA{0xe8, 0xf0, 0xff, 0xff})
			for _, quality := range []int{0, 60} {
				t.Run(fmt.Sprintf("%s %vpx jpeg %d", s.name, size, quality), func(t *testing.T) {
					var in image.Image = img
					if quality > 0 {
						dec, _, err := vision.Decode(encodeJPEG(t, img, quality), 1<<24)
						if err != nil {
							t.Fatal(err)
						}
						in = dec
					}
					res, err := ocr.Recognize(ctxT(t), in)
					if err != nil {
						t.Fatal(err)
					}
					want := strings.Join(s.lines, "\n")
					rate := cer(res.Text, want)
					t.Logf("CER %.2f%% confidence %.2f", 100*rate, res.Confidence)
					if rate > 0.05 {
						t.Errorf("CER %.2f%% > 5%%:\ngot  %q\nwant %q", 100*rate, res.Text, want)
					}
				})
			}
		}
	}
}

func TestOCRBlankImageHasNoText(t *testing.T) {
	ocr := requireTesseract(t)
	res, err := ocr.Recognize(ctxT(t), scene(7, 200, 150))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(res.Text) != "" && res.Confidence > 0.8 {
		t.Errorf("a picture without text read as %q with confidence %.2f", res.Text, res.Confidence)
	}
}

func TestOCRUnavailable(t *testing.T) {
	tests := []struct {
		name string
		cfg  vision.TesseractConfig
	}{
		{"binary missing", vision.TesseractConfig{Binary: "/nonexistent/tesseract"}},
		{"language missing", vision.TesseractConfig{Languages: "rus+xyz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Binary == "" {
				requireTesseract(t)
			}
			ocr, err := vision.NewTesseract(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ocr.Recognize(ctxT(t), scene(1, 64, 64))
			if !errors.Is(err, vision.ErrOCRUnavailable) {
				t.Fatalf("err = %v, want ErrOCRUnavailable", err)
			}
			if _, err := vision.TesseractStatus(ctxT(t), tc.cfg.Binary, tc.cfg.Languages); !errors.Is(err, vision.ErrOCRUnavailable) {
				t.Fatalf("status err = %v, want ErrOCRUnavailable", err)
			}
		})
	}
}

func TestTesseractStatusReportsVersionAndLanguages(t *testing.T) {
	requireTesseract(t)
	info, err := vision.TesseractStatus(ctxT(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if info.Version == "" || !strings.HasPrefix(info.Binary, "/") {
		t.Errorf("info = %+v, want a version and an absolute binary path", info)
	}
	for _, l := range []string{"rus", "eng"} {
		found := false
		for _, have := range info.Languages {
			found = found || have == l
		}
		if !found {
			t.Errorf("languages %v lack %s", info.Languages, l)
		}
	}
}

func TestOCRTimeoutIsAFailureNotUnavailable(t *testing.T) {
	requireTesseract(t)
	face := loadFont(t, 28)
	slow, err := vision.NewTesseract(vision.TesseractConfig{Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Status(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_, err = slow.Recognize(ctxT(t), renderText(face, ocrSamples[0].lines, color.Black, color.White))
	if !errors.Is(err, vision.ErrOCRFailed) || errors.Is(err, vision.ErrOCRUnavailable) {
		t.Fatalf("err = %v, want ErrOCRFailed", err)
	}
}

func TestParseTSV(t *testing.T) {
	const header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
	tests := []struct {
		name     string
		tsv      string
		wantText string
		wantConf float64
		wantErr  bool
	}{
		{"words lines and paragraphs", header +
			"1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n" +
			"5\t1\t1\t1\t1\t1\t0\t0\t10\t10\t90\tПривет\n" +
			"5\t1\t1\t1\t1\t2\t0\t0\t10\t10\t80.5\tмир\n" +
			"5\t1\t1\t1\t2\t1\t0\t0\t10\t10\t100\tline2\n" +
			"5\t1\t2\t1\t1\t1\t0\t0\t10\t10\t50\tblock\n" +
			"5\t1\t2\t1\t1\t2\t0\t0\t10\t10\t-1\tskipped\n" +
			"5\t1\t2\t1\t1\t3\t0\t0\t10\t10\t70\t \n",
			"Привет мир\nline2\n\nblock", (90*6 + 80.5*3 + 100*5 + 50*5) / 19 / 100, false},
		{"empty", header, "", 0, false},
		{"not tsv", "Error: something\n", "", 0, true},
		{"bad confidence", header + "5\t1\t1\t1\t1\t1\t0\t0\t10\t10\tx\tword\n", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := vision.ParseTSV([]byte(tc.tsv))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if res.Text != tc.wantText {
				t.Errorf("text = %q, want %q", res.Text, tc.wantText)
			}
			if diff := res.Confidence - tc.wantConf; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("confidence = %v, want %v", res.Confidence, tc.wantConf)
			}
		})
	}
}

// TestOCRStatusNotStuckOnACancelledCheck: a check cut short by its context is not kept as
// "unavailable".
func TestOCRStatusNotStuckOnACancelledCheck(t *testing.T) {
	requireTesseract(t)
	ocr, err := vision.NewTesseract(vision.TesseractConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ocr.Status(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("status under a cancelled context = %v, want context.Canceled", err)
	}
	if err := ocr.Status(ctxT(t)); err != nil {
		t.Fatalf("status after = %v, want available", err)
	}
}
