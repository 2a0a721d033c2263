package vision_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/tgflow/tgflow/internal/testenv"
)

// fontPath is DejaVu Sans (Debian fonts-dejavu-core): a font with Cyrillic, for rendering
// the Russian OCR samples.
const fontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

// loadFont parses DejaVu Sans; without it the test fails under CI and skips otherwise.
func loadFont(t testing.TB, size float64) font.Face {
	t.Helper()
	data, err := os.ReadFile(fontPath)
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("font %s is required (apt-get install fonts-dejavu-core): %v", fontPath, err)
		}
		t.Skipf("skipping: font %s not available (apt-get install fonts-dejavu-core): %v", fontPath, err)
	}
	f, err := opentype.Parse(data)
	if err != nil {
		t.Fatalf("parse %s: %v", fontPath, err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		t.Fatalf("face: %v", err)
	}
	t.Cleanup(func() {
		if err := face.Close(); err != nil {
			t.Errorf("close face: %v", err)
		}
	})
	return face
}

// renderText draws lines of dark text on a light background with a margin.
func renderText(face font.Face, lines []string, fg, bg color.Color) *image.RGBA {
	m := face.Metrics()
	lineH := (m.Height * 14 / 10).Ceil()
	width := 0
	for _, l := range lines {
		width = max(width, font.MeasureString(face, l).Ceil())
	}
	const margin = 40
	img := image.NewRGBA(image.Rect(0, 0, width+2*margin, lineH*len(lines)+2*margin))
	draw.Draw(img, img.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(fg), Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(margin, margin+i*lineH+m.Ascent.Ceil())
		d.DrawString(l)
	}
	return img
}

// scene is a random picture: gradients and filled shapes, so that its hashes are those of
// a photo-like image, different for each seed.
func scene(seed uint64, w, h int) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c0 := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	c1 := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	for y := range h {
		for x := range w {
			t := float64(x+y) / float64(w+h)
			img.SetRGBA(x, y, color.RGBA{
				uint8(float64(c0.R)*(1-t) + float64(c1.R)*t),
				uint8(float64(c0.G)*(1-t) + float64(c1.G)*t),
				uint8(float64(c0.B)*(1-t) + float64(c1.B)*t), 255})
		}
	}
	for range 6 + r.IntN(6) {
		x0, y0 := r.IntN(w), r.IntN(h)
		rect := image.Rect(x0, y0, x0+w/8+r.IntN(w/3), y0+h/8+r.IntN(h/3))
		c := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
		if r.IntN(2) == 0 {
			draw.Draw(img, rect, image.NewUniform(c), image.Point{}, draw.Over)
			continue
		}
		cx, cy, rad := x0, y0, w/12+r.IntN(w/6)
		for y := max(0, cy-rad); y < min(h, cy+rad); y++ {
			for x := max(0, cx-rad); x < min(w, cx+rad); x++ {
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= rad*rad {
					img.SetRGBA(x, y, c)
				}
			}
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("png: %v", err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatalf("jpeg: %v", err)
	}
	return buf.Bytes()
}

func encodeGIF(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatalf("gif: %v", err)
	}
	return buf.Bytes()
}

// resize scales img to w × h with a bilinear filter.
func resize(img image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
	return dst
}

// cer is the character error rate: the Levenshtein distance between the texts with runs of
// whitespace collapsed, over the length of want (in code points).
func cer(got, want string) float64 {
	g := []rune(strings.Join(strings.Fields(got), " "))
	w := []rune(strings.Join(strings.Fields(want), " "))
	if len(w) == 0 {
		return float64(len(g))
	}
	prev := make([]int, len(g)+1)
	cur := make([]int, len(g)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(w); i++ {
		cur[0] = i
		for j := 1; j <= len(g); j++ {
			sub := prev[j-1]
			if w[i-1] != g[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(g)]) / float64(len(w))
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
