package vision

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // registers the GIF decoder
	_ "image/jpeg" // registers the JPEG decoder
	_ "image/png"  // registers the PNG decoder
	"slices"
	"strconv"

	"github.com/corona10/goimagehash"
	_ "golang.org/x/image/webp" // registers the WebP decoder
)

// Errors of decoding one image; the item records them, the post goes on.
var (
	// ErrDecode is an image that none of the registered decoders (JPEG, PNG, GIF, WebP)
	// reads.
	ErrDecode = errors.New("vision: image does not decode")
	// ErrTooManyPixels is an image whose declared canvas exceeds the pixel cap.
	ErrTooManyPixels = errors.New("vision: image has too many pixels")
)

// Local is what the offline analysis finds in one image.
type Local struct {
	// Format is the decoder's name: jpeg, png, gif, webp.
	Format        string
	Width, Height int
	// PHash and DHash are the 64-bit perceptual and difference hashes.
	PHash, DHash uint64
	// Colors are the dominant colours as #rrggbb, the most frequent first.
	Colors []string
}

// Decode decodes an image after checking that its canvas is at most maxPixels.
func Decode(data []byte, maxPixels int) (image.Image, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", fmt.Errorf("%w: %s canvas %dx%d", ErrDecode, format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, "", fmt.Errorf("%w: %dx%d, at most %d", ErrTooManyPixels, cfg.Width, cfg.Height, maxPixels)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrDecode, format, err)
	}
	return img, format, nil
}

// AnalyzeLocal computes dimensions, hashes and nColors dominant colours of a decoded
// image.
func AnalyzeLocal(img image.Image, format string, nColors int) (Local, error) {
	b := img.Bounds()
	thumb := grayThumb(img)
	ph, err := goimagehash.PerceptionHash(thumb)
	if err != nil {
		return Local{}, fmt.Errorf("vision: phash: %w", err)
	}
	dh, err := goimagehash.DifferenceHash(thumb)
	if err != nil {
		return Local{}, fmt.Errorf("vision: dhash: %w", err)
	}
	return Local{
		Format: format, Width: b.Dx(), Height: b.Dy(),
		PHash: ph.GetHash(), DHash: dh.GetHash(),
		Colors: DominantColors(img, nColors),
	}, nil
}

// FormatHash writes a 64-bit hash as 16 lowercase hex digits, the form facts carry.
func FormatHash(h uint64) string {
	const digits = "0123456789abcdef"
	var buf [16]byte
	for i := 15; i >= 0; i-- {
		buf[i] = digits[h&0xf]
		h >>= 4
	}
	return string(buf[:])
}

// ErrBadHash is a hash that is not 16 hex digits.
var ErrBadHash = errors.New("vision: hash is not 16 hex digits")

// ParseHash reads a hash written by FormatHash.
func ParseHash(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: %q", ErrBadHash, s)
	}
	h, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadHash, s)
	}
	return h, nil
}

// colorSample is the side of the grid of pixels the colour analysis samples.
const colorSample = 64

// DominantColors returns up to n colours that cover the image, as #rrggbb, by a median cut
// (boxes split at the mean of their widest channel) over a colorSample × colorSample grid
// of its pixels (transparent pixels are ignored), the largest share first. Colours covering less than 2 % of the samples are dropped.
func DominantColors(img image.Image, n int) []string {
	b := img.Bounds()
	if b.Empty() || n < 1 {
		return nil
	}
	sx, sy := min(colorSample, b.Dx()), min(colorSample, b.Dy())
	px := make([][3]uint8, 0, sx*sy)
	for j := range sy {
		y := b.Min.Y + (2*j+1)*b.Dy()/(2*sy)
		for i := range sx {
			x := b.Min.X + (2*i+1)*b.Dx()/(2*sx)
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.A < 128 {
				continue
			}
			px = append(px, [3]uint8{c.R, c.G, c.B})
		}
	}
	if len(px) == 0 {
		return nil
	}
	boxes := [][][3]uint8{px}
	for len(boxes) < n {
		bi, ch, width := -1, 0, 0
		for i, box := range boxes {
			if len(box) < 2 {
				continue
			}
			if c, w := widestChannel(box); w > width {
				bi, ch, width = i, c, w
			}
		}
		if bi < 0 {
			break // every box is one colour
		}
		// Split at the channel's mean value, not at the median pixel: a box of two flat
		// colours then splits into exactly those two, instead of a median that mixes them.
		box := boxes[bi]
		sum := 0
		for _, p := range box {
			sum += int(p[ch])
		}
		mean := uint8(sum / len(box))
		slices.SortFunc(box, func(a, b [3]uint8) int { return int(a[ch]) - int(b[ch]) })
		cut, _ := slices.BinarySearchFunc(box, mean+1, func(p [3]uint8, v uint8) int { return int(p[ch]) - int(v) })
		boxes[bi] = box[:cut]
		boxes = append(boxes, box[cut:])
	}
	type share struct {
		hex   string
		count int
	}
	byHex := map[string]int{}
	for _, box := range boxes {
		var sum [3]int
		for _, p := range box {
			sum[0] += int(p[0])
			sum[1] += int(p[1])
			sum[2] += int(p[2])
		}
		k := len(box)
		byHex[fmt.Sprintf("#%02x%02x%02x", (sum[0]+k/2)/k, (sum[1]+k/2)/k, (sum[2]+k/2)/k)] += k
	}
	shares := make([]share, 0, len(byHex))
	for h, c := range byHex {
		if c*50 >= len(px) {
			shares = append(shares, share{h, c})
		}
	}
	slices.SortFunc(shares, func(a, b share) int {
		if a.count != b.count {
			return b.count - a.count
		}
		if a.hex < b.hex {
			return -1
		}
		return 1
	})
	out := make([]string, len(shares))
	for i, s := range shares {
		out[i] = s.hex
	}
	return out
}

// widestChannel is the RGB channel with the largest range in box, and that range.
func widestChannel(box [][3]uint8) (int, int) {
	lo, hi := [3]uint8{255, 255, 255}, [3]uint8{}
	for _, p := range box {
		for c := range 3 {
			lo[c] = min(lo[c], p[c])
			hi[c] = max(hi[c], p[c])
		}
	}
	best, width := 0, -1
	for c := range 3 {
		if w := int(hi[c]) - int(lo[c]); w > width {
			best, width = c, w
		}
	}
	return best, width
}
