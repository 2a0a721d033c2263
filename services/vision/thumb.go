package vision

import (
	"image"
	"image/color"
)

// hashSide is the longest side of the grayscale copy the hashes are computed on. The
// pHash looks at 32×32 and the dHash at 9×8 pixels, so detail beyond 256 px only costs
// time: hashing the copy instead of a 1280×960 photo halves the local analysis.
const hashSide = 256

// grayThumb is img in BT.601 luma, box-averaged down so that its longest side is at most
// hashSide. Every format goes through it, so a picture hashes alike whatever its codec.
func grayThumb(img image.Image) *image.Gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := w, h
	if m := max(w, h); m > hashSide {
		tw, th = max(1, w*hashSide/m), max(1, h*hashSide/m)
	}
	sum := make([]uint32, tw*th)
	cnt := make([]uint32, tw*th)
	// xs maps each source column to its thumbnail column.
	xs := make([]int, w)
	for x := range xs {
		xs[x] = x * tw / w
	}
	add := func(y int, luma func(x int) uint8) {
		row := (y * th / h) * tw
		for x := range w {
			i := row + xs[x]
			sum[i] += uint32(luma(x))
			cnt[i]++
		}
	}
	switch src := img.(type) {
	case *image.YCbCr:
		for y := range h {
			off := src.YOffset(b.Min.X, b.Min.Y+y)
			add(y, func(x int) uint8 { return src.Y[off+x] })
		}
	case *image.Gray:
		for y := range h {
			off := src.PixOffset(b.Min.X, b.Min.Y+y)
			add(y, func(x int) uint8 { return src.Pix[off+x] })
		}
	case *image.RGBA:
		for y := range h {
			off := src.PixOffset(b.Min.X, b.Min.Y+y)
			add(y, func(x int) uint8 {
				p := src.Pix[off+4*x : off+4*x+3 : off+4*x+3]
				return luma8(uint32(p[0]), uint32(p[1]), uint32(p[2]))
			})
		}
	default:
		for y := range h {
			add(y, func(x int) uint8 {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				return luma8(r>>8, g>>8, bl>>8)
			})
		}
	}
	out := image.NewGray(image.Rect(0, 0, tw, th))
	for i := range sum {
		out.Pix[i] = uint8((sum[i] + cnt[i]/2) / max(cnt[i], 1))
	}
	return out
}

// luma8 is BT.601 luma of 8-bit RGB, as color.GrayModel computes it.
func luma8(r, g, b uint32) uint8 {
	return color.GrayModel.Convert(color.RGBA{uint8(r), uint8(g), uint8(b), 0xff}).(color.Gray).Y
}
