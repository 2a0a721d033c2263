// Package doctor answers, in one pass over the log's state, the questions an operator of
// tgflow asks when something looks wrong: which consumer is stalled, dead, leaked or behind;
// what is in the DLQ, by consumer and class; which posts did not reach a stage or a read
// model that should have seen them; how full the log and its disk are; when each channel was
// last read and why it last failed; how far each read model is behind the log.
//
// Everything is computed from the server's view (consumer and stream state) and from the
// log itself, never from a read model: a stuck post is a fact above a consumer's ack floor
// that is older than a deadline. Doctor judges only the consumers it is told to expect (the
// services configured where it runs): a consumer of another service is "not running" and
// does not make the result unhealthy by itself.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/topology"
)

// Severity of a problem: a fail makes the report unhealthy, a warning does not.
type Severity string

// Severities.
const (
	SeverityWarn Severity = "warn"
	SeverityFail Severity = "fail"
)

// Problem is one finding, named by the check that made it and its subject (a consumer, a
// stream, a post, a channel).
type Problem struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`
	Subject  string   `json:"subject"`
	Message  string   `json:"message"`
}

// Thresholds decide what counts as a problem. Zero values take the defaults.
type Thresholds struct {
	// StallAfter: a consumer with work (pending or unacknowledged) and pulls waiting that
	// delivered nothing for this long is stalled.
	StallAfter time.Duration `json:"stall_after"`
	// DeadAfter: a consumer with work and no pull waiting, idle this long, is dead.
	DeadAfter time.Duration `json:"dead_after"`
	// LagMax: more messages pending than this is lagging.
	LagMax uint64 `json:"lag_max"`
	// StuckAfter: a fact older than this still above a consumer's ack floor is stuck.
	StuckAfter time.Duration `json:"stuck_after"`
	// MaxStuck bounds the stuck facts listed per consumer.
	MaxStuck int `json:"max_stuck"`
	// DLQMax: more dead letters than this is a problem.
	DLQMax int `json:"dlq_max"`
	// FullRatio: a stream or account store used above this fraction of its limit is a problem.
	FullRatio float64 `json:"full_ratio"`
	// MinFreeDisk: less free space than this (bytes) where the log is stored is a problem.
	MinFreeDisk uint64 `json:"min_free_disk"`
}

// thresholdsJSON is Thresholds with its durations as Go duration strings ("5m0s").
type thresholdsJSON struct {
	StallAfter  string  `json:"stall_after"`
	DeadAfter   string  `json:"dead_after"`
	LagMax      uint64  `json:"lag_max"`
	StuckAfter  string  `json:"stuck_after"`
	MaxStuck    int     `json:"max_stuck"`
	DLQMax      int     `json:"dlq_max"`
	FullRatio   float64 `json:"full_ratio"`
	MinFreeDisk uint64  `json:"min_free_disk"`
}

// MarshalJSON writes the durations as the flags take them ("5m0s").
func (t Thresholds) MarshalJSON() ([]byte, error) {
	return json.Marshal(thresholdsJSON{t.StallAfter.String(), t.DeadAfter.String(), t.LagMax, t.StuckAfter.String(), t.MaxStuck, t.DLQMax, t.FullRatio, t.MinFreeDisk})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Thresholds) UnmarshalJSON(b []byte) error {
	var j thresholdsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var errs []error
	parse := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		errs = append(errs, err)
		return d
	}
	*t = Thresholds{parse(j.StallAfter), parse(j.DeadAfter), j.LagMax, parse(j.StuckAfter), j.MaxStuck, j.DLQMax, j.FullRatio, j.MinFreeDisk}
	return errors.Join(errs...)
}

// DefaultThresholds are the flags' defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		StallAfter:  5 * time.Minute,
		DeadAfter:   time.Minute,
		LagMax:      10000,
		StuckAfter:  30 * time.Minute,
		MaxStuck:    20,
		DLQMax:      0,
		FullRatio:   0.9,
		MinFreeDisk: 1 << 30,
	}
}

// ErrBadThresholds is returned for a negative or out-of-range threshold.
var ErrBadThresholds = errors.New("doctor: bad thresholds")

func (t *Thresholds) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"stall-after": t.StallAfter, "dead-after": t.DeadAfter, "stuck-after": t.StuckAfter} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%w: %s %s is negative", ErrBadThresholds, name, d))
		}
	}
	if t.MaxStuck < 0 || t.DLQMax < 0 {
		errs = append(errs, fmt.Errorf("%w: max-stuck and dlq-max must not be negative", ErrBadThresholds))
	}
	if t.FullRatio < 0 || t.FullRatio > 1 {
		errs = append(errs, fmt.Errorf("%w: full-ratio %v is not within 0..1", ErrBadThresholds, t.FullRatio))
	}
	return errors.Join(errs...)
}

// CheckpointFunc reads a read model's checkpoint: the last log sequence it applied.
type CheckpointFunc func(ctx context.Context) (uint64, error)

// Options say what doctor expects where it runs.
type Options struct {
	Thresholds Thresholds
	// Expected are the consumers of the services expected to run (topology names); nil
	// means every declared consumer.
	Expected []string
	// Checkpoints read the configured read models' checkpoints, by consumer name.
	Checkpoints map[string]CheckpointFunc
	// StoreDir, when set, is the directory the log is stored in (laptop mode): its free
	// disk space is checked.
	StoreDir string
	// Now is the clock (default time.Now); consumer idleness uses the server's clock.
	Now func() time.Time
}

// Run inspects the server js reaches and returns the report. An error means the state could
// not be read (no log stream, the server refused); problems found are in the report.
func Run(ctx context.Context, js jetstream.JetStream, o Options) (*Report, error) {
	if js == nil {
		return nil, errors.New("doctor: nil JetStream")
	}
	th := o.Thresholds
	if err := th.validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	expected := map[string]bool{}
	if o.Expected == nil {
		for _, c := range topology.Consumers() {
			expected[c.Name] = true
		}
	} else {
		for _, n := range o.Expected {
			expected[n] = true
		}
	}
	d := &doctor{js: js, o: o, th: th, expected: expected, r: &Report{Time: o.Now().UTC(), Thresholds: th}}
	steps := []func(context.Context) error{d.consumers, d.dlq, d.stuck, d.storage, d.channels, d.projections}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	d.r.Healthy = !slices.ContainsFunc(d.r.Problems, func(p Problem) bool { return p.Severity == SeverityFail })
	return d.r, nil
}

type doctor struct {
	js       jetstream.JetStream
	o        Options
	th       Thresholds
	expected map[string]bool
	r        *Report
	// infos are the log's consumers by name, read once.
	infos map[string]*jetstream.ConsumerInfo
}

func (d *doctor) problem(sev Severity, check, subject, format string, args ...any) {
	d.r.Problems = append(d.r.Problems, Problem{Severity: sev, Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
}
