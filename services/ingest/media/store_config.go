package media

import (
	"errors"
	"fmt"
	"os"
)

// Defaults of Config.
const (
	// DefaultMaxBytes caps one media file; larger files are refused with ErrTooLarge.
	DefaultMaxBytes int64 = 50 << 20
	// DefaultMemoryBytes is how much of a file is held in memory while it is hashed; the
	// rest is spooled to a temporary file.
	DefaultMemoryBytes int64 = 4 << 20
)

// Config tunes a Store. The zero value means the defaults.
type Config struct {
	// MaxBytes is the largest file Put accepts (TGFLOW_MEDIA_MAX_BYTES).
	MaxBytes int64
	// MemoryBytes is the spool size kept in memory before Put switches to a temporary file.
	MemoryBytes int64
	// TempDir holds spool files; empty means os.TempDir().
	TempDir string
}

func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = DefaultMemoryBytes
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max bytes %d is negative", c.MaxBytes))
	}
	if c.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("memory bytes %d is negative", c.MemoryBytes))
	}
	return errors.Join(errs...)
}
