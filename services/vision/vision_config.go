package vision

import (
	"errors"
	"fmt"
	"time"
)

// Defaults.
const (
	DefaultMaxImages = 10
	// DefaultMaxBytes caps one image read from the store (20 MiB, the Telegram photo
	// limit is 10 MiB; image documents can be larger).
	DefaultMaxBytes = 20 << 20
	// DefaultMaxPixels caps the decoded size (40 megapixels): a small file can declare a
	// huge canvas.
	DefaultMaxPixels = 40_000_000
	// DefaultNearThreshold is the largest pHash Hamming distance (of 64 bits) that links
	// two images as near-duplicates. Re-encoding and resizing move a pHash by 0–6 bits;
	// unrelated photos are 20–40 bits apart.
	DefaultNearThreshold = 10
	DefaultColors        = 4
	DefaultOCRTimeout    = 30 * time.Second
	DefaultOCRLanguages  = "rus+eng"
)

// Config of an Analyzer. Zero values mean the defaults.
type Config struct {
	// MaxImages is the number of distinct images analysed per post.
	MaxImages int
	// MaxBytes caps one image file; a larger one is recorded with reason too_large.
	MaxBytes int64
	// MaxPixels caps width × height of a decoded image.
	MaxPixels int
	// Colors is the number of dominant colours reported.
	Colors int
	// NearThreshold is the near-duplicate Hamming distance threshold (0–32); -1 turns
	// near-duplicate linking off.
	NearThreshold int
	// DisableOCR skips OCR entirely (items then say nothing about OCR).
	DisableOCR bool
}

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("vision: invalid config")

func (c *Config) setDefaults() {
	if c.MaxImages == 0 {
		c.MaxImages = DefaultMaxImages
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.Colors == 0 {
		c.Colors = DefaultColors
	}
	if c.NearThreshold == 0 {
		c.NearThreshold = DefaultNearThreshold
	}
}

// Validate reports every problem of a defaulted config.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxImages < 1 {
		errs = append(errs, fmt.Errorf("max images %d must be positive", c.MaxImages))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("max bytes %d must be positive", c.MaxBytes))
	}
	if c.MaxPixels < 1 {
		errs = append(errs, fmt.Errorf("max pixels %d must be positive", c.MaxPixels))
	}
	if c.Colors < 1 || c.Colors > 16 {
		errs = append(errs, fmt.Errorf("colors %d outside [1, 16]", c.Colors))
	}
	if c.NearThreshold < -1 || c.NearThreshold > 32 {
		errs = append(errs, fmt.Errorf("near threshold %d outside [-1, 32]", c.NearThreshold))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
