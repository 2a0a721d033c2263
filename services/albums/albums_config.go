package albums

import (
	"errors"
	"fmt"
	"time"
)

// Defaults.
const (
	DefaultDeadline    = 10 * time.Minute
	DefaultGrace       = 2 * time.Minute
	DefaultPendingTTL  = 24 * time.Hour
	DefaultMaxOCRChars = 8000
	DefaultMaxLabels   = 20
	// logSkew is how far before a claim's time the log is searched for its fact: instances'
	// clocks may differ.
	logSkew = 5 * time.Minute
)

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("albums: invalid configuration")

// Config configures an Assembler. Zero fields take the defaults.
type Config struct {
	// Deadline is how long after an album (version) was first seen its summary is written
	// even if some item has no vision result; the missing items are listed.
	Deadline time.Duration
	// Grace is how long a claimed summary may stay unconfirmed before Due settles it:
	// published again within the log's duplicate window, else looked up on the log (and
	// published again when it is not there).
	Grace time.Duration
	// PendingTTL is how long a post's vision result waits for an albums.parsed naming it.
	PendingTTL time.Duration
	// MaxOCRChars bounds the album's OCR text; MaxLabels its labels.
	MaxOCRChars int
	MaxLabels   int
	// Now is the clock of first-seen times and claims (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.PendingTTL == 0 {
		c.PendingTTL = DefaultPendingTTL
	}
	if c.MaxOCRChars == 0 {
		c.MaxOCRChars = DefaultMaxOCRChars
	}
	if c.MaxLabels == 0 {
		c.MaxLabels = DefaultMaxLabels
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Deadline < 0 {
		errs = append(errs, fmt.Errorf("negative deadline %s", c.Deadline))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("negative grace %s", c.Grace))
	}
	if c.PendingTTL < 0 {
		errs = append(errs, fmt.Errorf("negative pending TTL %s", c.PendingTTL))
	}
	if c.MaxOCRChars < 0 || c.MaxLabels < 0 {
		errs = append(errs, errors.New("negative MaxOCRChars or MaxLabels"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
