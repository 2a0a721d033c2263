package tagger

import (
	"errors"
	"fmt"
)

// Defaults.
const (
	DefaultMaxTags        = 5
	DefaultShortTextRunes = 40
	DefaultVisionWeight   = 0.5
)

// Config of the local tagger. Zero values mean the defaults.
type Config struct {
	// MaxTags is the largest number of tags per post (hashtags first), 1–5.
	MaxTags int
	// ShortTextRunes: a post whose text is shorter than this and has no media gets its
	// hashtags only (maybe none).
	ShortTextRunes int
	// VisionWeight weighs words of OCR text and image descriptions against the post's own.
	VisionWeight float64
}

func (c *Config) setDefaults() {
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
	if c.ShortTextRunes == 0 {
		c.ShortTextRunes = DefaultShortTextRunes
	}
	if c.VisionWeight == 0 {
		c.VisionWeight = DefaultVisionWeight
	}
}

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("tagger: invalid config")

// Validate reports every problem of a defaulted config.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxTags < 1 || c.MaxTags > 5 {
		errs = append(errs, fmt.Errorf("max tags %d outside [1, 5]", c.MaxTags))
	}
	if c.ShortTextRunes < 0 {
		errs = append(errs, fmt.Errorf("short text runes %d is negative", c.ShortTextRunes))
	}
	if c.VisionWeight < 0 || c.VisionWeight > 1 {
		errs = append(errs, fmt.Errorf("vision weight %v outside [0, 1]", c.VisionWeight))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
