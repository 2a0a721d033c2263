package vision

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// OCR recognises the text of an image.
type OCR interface {
	Recognize(ctx context.Context, img image.Image) (OCRResult, error)
}

// OCRResult is the text of one image and the recogniser's mean word confidence in [0, 1]
// (weighted by word length; 0 when there are no words).
type OCRResult struct {
	Text       string
	Confidence float64
	Words      int
}

// ErrOCRUnavailable is an OCR engine that cannot run here (binary or languages missing).
// The item says "OCR unavailable"; the post is analysed without text.
var ErrOCRUnavailable = errors.New("OCR unavailable")

// ErrOCRFailed is one recognition that failed (timeout, crash, unreadable output).
var ErrOCRFailed = errors.New("OCR failed")

// TesseractConfig configures the Tesseract subprocess. Zero values mean the defaults.
type TesseractConfig struct {
	// Binary is the tesseract executable, a path or a name looked up in PATH
	// (default "tesseract").
	Binary string
	// Languages is the -l argument (default "rus+eng"); every language must be installed.
	Languages string
	// Timeout bounds one recognition (default 30 s).
	Timeout time.Duration
	// MaxProcs bounds the tesseract processes running at once (default: the CPU count).
	MaxProcs int
}

func (c *TesseractConfig) setDefaults() {
	if c.Binary == "" {
		c.Binary = "tesseract"
	}
	if c.Languages == "" {
		c.Languages = DefaultOCRLanguages
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultOCRTimeout
	}
	if c.MaxProcs == 0 {
		c.MaxProcs = runtime.NumCPU()
	}
}

// Tesseract runs the tesseract command line program (no cgo) for each image: the image is
// written to its stdin as a grayscale PGM and the TSV it prints gives words and their
// confidences. Each process runs single-threaded (OMP_THREAD_LIMIT=1) so that MaxProcs
// bounds the CPU it takes.
type Tesseract struct {
	cfg TesseractConfig
	sem chan struct{}

	mu        sync.Mutex
	checked   bool
	statusErr error
}

// NewTesseract builds the recogniser. Whether tesseract can run is checked at the first
// recognition (and by Status).
func NewTesseract(cfg TesseractConfig) (*Tesseract, error) {
	cfg.setDefaults()
	if cfg.Timeout < 0 || cfg.MaxProcs < 0 {
		return nil, fmt.Errorf("%w: tesseract timeout and max procs must not be negative", ErrConfig)
	}
	return &Tesseract{cfg: cfg, sem: make(chan struct{}, cfg.MaxProcs)}, nil
}

// TesseractInfo is what TesseractStatus found.
type TesseractInfo struct {
	Binary    string
	Version   string
	Languages []string
}

// TesseractStatus reports whether tesseract runs and has the languages of the -l
// argument langs ("rus+eng"), for `tgflow config`. The error wraps ErrOCRUnavailable and
// says what is missing.
func TesseractStatus(ctx context.Context, binary, langs string) (TesseractInfo, error) {
	if binary == "" {
		binary = "tesseract"
	}
	if langs == "" {
		langs = DefaultOCRLanguages
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return TesseractInfo{}, fmt.Errorf("%w: %s not found (install tesseract-ocr, tesseract-ocr-rus, tesseract-ocr-eng)", ErrOCRUnavailable, binary)
	}
	info := TesseractInfo{Binary: path}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return info, fmt.Errorf("%w: %s --version: %v", ErrOCRUnavailable, path, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	info.Version = strings.TrimSpace(strings.TrimPrefix(first, "tesseract "))
	out, err = exec.CommandContext(ctx, path, "--list-langs").CombinedOutput()
	if err != nil {
		return info, fmt.Errorf("%w: %s --list-langs: %v", ErrOCRUnavailable, path, err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if i > 0 { // the first line says where the languages are
			info.Languages = append(info.Languages, strings.TrimSpace(line))
		}
	}
	var missing []string
	for l := range strings.SplitSeq(langs, "+") {
		if !slices.Contains(info.Languages, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		return info, fmt.Errorf("%w: tesseract lacks the language data %s (install tesseract-ocr-%s)", ErrOCRUnavailable, strings.Join(missing, ", "), strings.Join(missing, ", tesseract-ocr-"))
	}
	return info, nil
}

// Status checks whether this recogniser can run. The answer is kept, unless ctx ended
// while checking (then the next call checks again).
func (t *Tesseract) Status(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.checked {
		return t.statusErr
	}
	_, err := TesseractStatus(ctx, t.cfg.Binary, t.cfg.Languages)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	t.checked, t.statusErr = true, err
	return err
}

// Recognize runs tesseract on img. ErrOCRUnavailable when it cannot run at all,
// ErrOCRFailed when this recognition failed, the context's error when ctx ended.
func (t *Tesseract) Recognize(ctx context.Context, img image.Image) (OCRResult, error) {
	if err := t.Status(ctx); err != nil {
		return OCRResult{}, err
	}
	pgm := encodePGM(img)
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return OCRResult{}, ctx.Err()
	}
	defer func() { <-t.sem }()
	cctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, t.cfg.Binary, "stdin", "stdout", "-l", t.cfg.Languages, "--psm", "3", "tsv")
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	cmd.Stdin = bytes.NewReader(pgm)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return OCRResult{}, ctx.Err()
	}
	if cctx.Err() != nil {
		return OCRResult{}, fmt.Errorf("%w: timed out after %s", ErrOCRFailed, t.cfg.Timeout)
	}
	if err != nil {
		return OCRResult{}, fmt.Errorf("%w: %v: %s", ErrOCRFailed, err, firstLine(stderr.String()))
	}
	res, err := ParseTSV(stdout.Bytes())
	if err != nil {
		return OCRResult{}, fmt.Errorf("%w: %w", ErrOCRFailed, err)
	}
	return res, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	return line
}

// encodePGM writes img as a binary grayscale PGM (P5), which tesseract reads from stdin
// without any codec. Transparent pixels are composed over white.
func encodePGM(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	header := fmt.Sprintf("P5\n%d %d\n255\n", w, h)
	out := make([]byte, len(header), len(header)+w*h)
	copy(out, header)
	switch src := img.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			i := src.PixOffset(b.Min.X, y)
			out = append(out, src.Pix[i:i+w]...)
		}
		return out
	case *image.YCbCr: // JPEG: the luma plane is the grayscale image
		for y := b.Min.Y; y < b.Max.Y; y++ {
			i := src.YOffset(b.Min.X, y)
			out = append(out, src.Y[i:i+w]...)
		}
		return out
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			// Premultiplied colour over white: c + (1 - a).
			r, g, bl = r+0xffff-a, g+0xffff-a, bl+0xffff-a
			y16 := (19595*r + 38470*g + 7471*bl + 1<<15) >> 16
			out = append(out, color.Gray{Y: uint8(y16 >> 8)}.Y)
		}
	}
	return out
}

// ParseTSV reads tesseract's TSV output: words (level 5) with a confidence ≥ 0 are
// joined by spaces within a line, lines by newlines and paragraphs by a blank line.
func ParseTSV(tsv []byte) (OCRResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(tsv))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var (
		sb        strings.Builder
		res       OCRResult
		confSum   float64
		confRunes int
		lastLine  [4]int
		first     = true
		header    = true
	)
	for sc.Scan() {
		line := sc.Text()
		if header {
			header = false
			if !strings.HasPrefix(line, "level\t") {
				return OCRResult{}, fmt.Errorf("tsv: unexpected header %q", firstLine(line))
			}
			continue
		}
		f := strings.SplitN(line, "\t", 12)
		if len(f) < 11 {
			continue // the trailing empty line
		}
		if f[0] != "5" || len(f) < 12 {
			continue
		}
		conf, err := strconv.ParseFloat(f[10], 64)
		if err != nil {
			return OCRResult{}, fmt.Errorf("tsv: confidence %q: %v", f[10], err)
		}
		word := strings.TrimSpace(f[11])
		if conf < 0 || word == "" {
			continue
		}
		var pos [4]int
		for i := range pos {
			if pos[i], err = strconv.Atoi(f[1+i]); err != nil {
				return OCRResult{}, fmt.Errorf("tsv: column %d %q: %v", 2+i, f[1+i], err)
			}
		}
		switch {
		case first:
		case pos[0] != lastLine[0] || pos[1] != lastLine[1] || pos[2] != lastLine[2]:
			sb.WriteString("\n\n") // another page, block or paragraph
		case pos[3] != lastLine[3]:
			sb.WriteByte('\n')
		default:
			sb.WriteByte(' ')
		}
		first, lastLine = false, pos
		sb.WriteString(word)
		n := utf8.RuneCountInString(word)
		confSum += conf * float64(n)
		confRunes += n
		res.Words++
	}
	if err := sc.Err(); err != nil {
		return OCRResult{}, fmt.Errorf("tsv: %w", err)
	}
	res.Text = sb.String()
	if confRunes > 0 {
		res.Confidence = min(1, max(0, confSum/float64(confRunes)/100))
	}
	return res, nil
}
