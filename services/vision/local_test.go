package vision_test

import (
	"errors"
	"image"
	"image/color"
	"image/draw"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tgflow/tgflow/services/vision"
)

func twoTone(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{0xd0, 0x20, 0x20, 0xff}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(w*2/3, 0, w, h), image.NewUniform(color.RGBA{0x20, 0x40, 0xc0, 0xff}), image.Point{}, draw.Src)
	return img
}

// paletted converts img to a palette of its own two colours, so that GIF keeps them exactly.
func paletted(img image.Image) *image.Paletted {
	p := image.NewPaletted(img.Bounds(), color.Palette{color.RGBA{0xd0, 0x20, 0x20, 0xff}, color.RGBA{0x20, 0x40, 0xc0, 0xff}})
	draw.Draw(p, p.Bounds(), img, img.Bounds().Min, draw.Src)
	return p
}

func TestDecodeFormats(t *testing.T) {
	img := twoTone(48, 32)
	readFixture := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vision", name))
		if err != nil {
			t.Fatalf("fixture: %v", err)
		}
		return b
	}
	tests := []struct {
		name       string
		data       []byte
		wantFormat string
		// exact: the colours survive the codec bit for bit.
		exact bool
	}{
		{"png", encodePNG(t, img), "png", true},
		{"jpeg", encodeJPEG(t, img, 95), "jpeg", false},
		{"gif", encodeGIF(t, paletted(img)), "gif", true},
		{"webp lossless", readFixture("two-tone-lossless.webp"), "webp", true},
		{"webp lossy", readFixture("two-tone-lossy.webp"), "webp", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec, format, err := vision.Decode(tc.data, 1<<20)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			loc, err := vision.AnalyzeLocal(dec, format, 4)
			if err != nil {
				t.Fatal(err)
			}
			if loc.Format != tc.wantFormat || loc.Width != 48 || loc.Height != 32 {
				t.Fatalf("format %s %dx%d, want %s 48x32", loc.Format, loc.Width, loc.Height, tc.wantFormat)
			}
			if tc.exact && !slices.Equal(loc.Colors, []string{"#d02020", "#2040c0"}) {
				t.Errorf("colours %v, want [#d02020 #2040c0] (red covers two thirds)", loc.Colors)
			}
			if len(loc.Colors) == 0 || len(loc.Colors) > 4 {
				t.Errorf("colours %v, want 1–4", loc.Colors)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	if _, _, err := vision.Decode([]byte("%PDF-1.7 not an image"), 1<<20); !errors.Is(err, vision.ErrDecode) {
		t.Errorf("pdf: err = %v, want ErrDecode", err)
	}
	big := encodePNG(t, twoTone(300, 200))
	if _, _, err := vision.Decode(big, 300*200-1); !errors.Is(err, vision.ErrTooManyPixels) {
		t.Errorf("over the pixel cap: err = %v, want ErrTooManyPixels", err)
	}
	if _, _, err := vision.Decode(big[:len(big)/2], 1<<20); !errors.Is(err, vision.ErrDecode) {
		t.Errorf("truncated png: err = %v, want ErrDecode", err)
	}
}

func TestDominantColors(t *testing.T) {
	quarter := image.NewRGBA(image.Rect(0, 0, 100, 100))
	fill := func(r image.Rectangle, c color.RGBA) {
		draw.Draw(quarter, r, image.NewUniform(c), image.Point{}, draw.Src)
	}
	fill(image.Rect(0, 0, 100, 100), color.RGBA{255, 255, 255, 255}) // white: 50 %
	fill(image.Rect(0, 0, 50, 60), color.RGBA{0, 0, 0, 255})         // black: 30 %
	fill(image.Rect(50, 0, 100, 40), color.RGBA{0, 128, 0, 255})     // green: 20 %
	transparent := image.NewNRGBA(image.Rect(0, 0, 10, 10))
	tests := []struct {
		name string
		img  image.Image
		n    int
		want []string
	}{
		{"shares in order", quarter, 4, []string{"#ffffff", "#000000", "#008000"}},
		{"fewer asked: the mean", quarter, 1, []string{"#809a80"}},
		{"one colour", image.NewUniform(color.RGBA{1, 2, 3, 255}), 4, []string{"#010203"}},
		{"transparent has none", transparent, 4, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img
			if u, ok := img.(*image.Uniform); ok {
				rgba := image.NewRGBA(image.Rect(0, 0, 20, 20))
				draw.Draw(rgba, rgba.Bounds(), u, image.Point{}, draw.Src)
				img = rgba
			}
			if got := vision.DominantColors(img, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("colours %v, want %v", got, tc.want)
			}
		})
	}
}
