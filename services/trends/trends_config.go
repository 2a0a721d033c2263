package trends

import (
	"errors"
	"fmt"
	"time"
)

// Fixed window geometry.
const (
	// Bucket is the granularity of event time.
	Bucket = 5 * time.Minute
	// Short is the trend window, Long the window its baseline comes from.
	Short = time.Hour
	Long  = 24 * time.Hour
	// WindowName is the TrendDetected.Window of the short window.
	WindowName = "1h"
	// Method names the score formula in the facts.
	Method = "poisson-z: (count-expected)/sqrt(expected+1), expected from the 23h before the window"
)

// Defaults.
const (
	DefaultMinChannels = 3
	DefaultMinCount    = 5
	DefaultMinScore    = 3.0
	DefaultCooldown    = time.Hour
	DefaultLateLimit   = 2 * time.Hour
	DefaultMaxSamples  = 5
	DefaultMinHistory  = 3 * time.Hour
	// replayMargin is added to the look-back of a replay.
	replayMargin = 10 * time.Minute
)

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("trends: invalid configuration")

// Config configures a Machine. Zero fields take the defaults.
type Config struct {
	// MinChannels is the least number of distinct channels a trend's posts come from.
	MinChannels int
	// MinCount is the least number of posts in the window.
	MinCount int
	// MinScore is the least burst score.
	MinScore float64
	// Cooldown is the least event time between two detections of one tag.
	Cooldown time.Duration
	// LateLimit is how far behind the watermark a post may be and still count.
	LateLimit time.Duration
	// MaxSamples bounds the sample posts in a fact (at most 5).
	MaxSamples int
	// MinHistory is the least history before a window that makes a baseline; until the
	// log holds that much, nothing trends.
	MinHistory time.Duration
}

func (c *Config) setDefaults() {
	if c.MinChannels == 0 {
		c.MinChannels = DefaultMinChannels
	}
	if c.MinCount == 0 {
		c.MinCount = DefaultMinCount
	}
	if c.MinScore == 0 {
		c.MinScore = DefaultMinScore
	}
	if c.Cooldown == 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.LateLimit == 0 {
		c.LateLimit = DefaultLateLimit
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = DefaultMaxSamples
	}
	if c.MinHistory == 0 {
		c.MinHistory = DefaultMinHistory
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.MinChannels < 0 || c.MinCount < 0 {
		errs = append(errs, errors.New("negative MinChannels or MinCount"))
	}
	if c.Cooldown < 0 || c.LateLimit < 0 {
		errs = append(errs, errors.New("negative Cooldown or LateLimit"))
	}
	if c.LateLimit%Bucket != 0 || c.Cooldown%Bucket != 0 {
		errs = append(errs, fmt.Errorf("the cooldown and the late limit must be multiples of %s", Bucket))
	}
	if c.MinHistory < 0 || c.MinHistory > Long-Short {
		errs = append(errs, fmt.Errorf("MinHistory %s outside [0, %s]", c.MinHistory, Long-Short))
	}
	if c.MaxSamples < 0 || c.MaxSamples > 5 {
		errs = append(errs, fmt.Errorf("MaxSamples %d outside [0, 5]", c.MaxSamples))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
