//go:build ignore

// generate writes the small media files of the export fixtures. The JSON fixtures are
// written by hand; run this only to recreate the images: go run generate.go
package main

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log"
	"os"
	"path/filepath"
)

func main() {
	files := map[string][]byte{
		"channel/photos/photo_1@01-03-2024_10-00-00.jpg": jpg(pattern(32, 24, 0)),
		"channel/photos/photo_2@01-03-2024_10-00-00.jpg": jpg(pattern(32, 24, 1)),
		"channel/photos/photo_3@01-03-2024_12-00-00.png": pngBytes(pattern(24, 24, 2)),
		// photo_4 has the bytes of photo_1: content addressing stores them once.
		"channel/photos/photo_4@01-03-2024_12-00-00.jpg":         jpg(pattern(32, 24, 0)),
		"channel/voice_messages/audio_1@01-03-2024_13-00-00.ogg": []byte("OggS\x00fixture voice message, not real audio\n"),
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func pattern(w, h, seed int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 8 * (seed + 1)), uint8(y * 10), uint8(120 + 60*seed), 255})
		}
	}
	return img
}

func jpg(img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 60}); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func pngBytes(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}
