package worker

import (
	"math/rand/v2"
	"time"
)

// Backoff computes redelivery delays: Base·2^(attempt-1), capped at Max, with ±Jitter.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64 // fraction, e.g. 0.2 for ±20%
	// Rand, when set, draws the jitter (a test seeds it and logs the seed); it is then used
	// by every caller of Delay, so it must not be shared by concurrent runners. Nil: the
	// global source.
	Rand *rand.Rand
}

// DefaultBackoff is used when a Config leaves Backoff zero.
var DefaultBackoff = Backoff{Base: time.Second, Max: 5 * time.Minute, Jitter: 0.2}

// Delay is the delay before attempt+1, after attempt failed attempts (attempt ≥ 1).
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if b.Jitter > 0 {
		r := rand.Float64
		if b.Rand != nil {
			r = b.Rand.Float64
		}
		f := 1 + b.Jitter*(2*r()-1)
		d = time.Duration(float64(d) * f)
	}
	return d
}
