package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/topology"
)

// Stuck is a fact older than the deadline that a consumer expected here has not
// acknowledged: its post (the CloudEvents subject) did not reach that step.
type Stuck struct {
	// Key is the post key <channel_id>/<message_id> (or the fact's subject for other facts).
	Key string `json:"key"`
	// Step is the consumer that has not processed the fact: the missing step.
	Step     string      `json:"step"`
	Type     events.Type `json:"type"`
	Subject  string      `json:"subject"`
	Seq      uint64      `json:"seq"`
	StoredAt time.Time   `json:"stored_at"`
}

var errPastCutoff = errors.New("past the cutoff")

// stuck scans, for every expected consumer, the facts it reads from its ack floor on, up
// to the first fact younger than the deadline: what is left is what did not reach it. The
// log is time-ordered, so the scan never reads past the cutoff.
func (d *doctor) stuck(ctx context.Context) error {
	cutoff := d.o.Now().Add(-d.th.StuckAfter)
	d.r.Stuck = []Stuck{}
	for _, c := range topology.Consumers() {
		if !d.expected[c.Name] {
			continue
		}
		var floor uint64
		if ci := d.infos[c.Name]; ci != nil {
			floor = ci.AckFloor.Stream
		}
		found, more, err := d.scan(ctx, c, floor, cutoff)
		if err != nil {
			return fmt.Errorf("stuck facts of %s: %w", c.Name, err)
		}
		if len(found) == 0 {
			continue
		}
		d.r.Stuck = append(d.r.Stuck, found...)
		n := fmt.Sprint(len(found))
		if more {
			n = "more than " + n
			d.r.StuckTruncated = append(d.r.StuckTruncated, c.Name)
		}
		first := found[0]
		d.problem(SeverityFail, "stuck", c.Name, "%s fact(s) older than %s not processed by %s (ack floor %d); first: %s %s (seq %d)",
			n, d.th.StuckAfter, c.Name, floor, first.Key, first.Type, first.Seq)
	}
	return nil
}

func (d *doctor) scan(ctx context.Context, c topology.Consumer, floor uint64, cutoff time.Time) ([]Stuck, bool, error) {
	limit := d.th.MaxStuck
	if limit == 0 {
		limit = DefaultThresholds().MaxStuck
	}
	var out []Stuck
	more := false
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := logtail.From{AfterSeq: floor}
	if floor == 0 {
		from = logtail.From{} // the beginning
	}
	err := logtail.Follow(ctx, d.js, logtail.Options{Filters: c.Filters(), From: from, CaughtUp: cancel}, func(seq uint64, m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if meta.Timestamp.After(cutoff) {
			return errPastCutoff
		}
		if len(out) == limit {
			more = true
			return errPastCutoff
		}
		s := Stuck{Step: c.Name, Subject: m.Subject(), Seq: seq, StoredAt: meta.Timestamp.UTC()}
		if ev, err := events.Decode(events.Header(m.Headers()), m.Data()); err == nil {
			s.Key, s.Type = ev.Subject, ev.Type
		} else {
			// Undecodable: the stage dead-letters it; still named by its headers.
			s.Key, s.Type = m.Headers().Get(events.HeaderSubject), events.Type(m.Headers().Get(events.HeaderType))
		}
		out = append(out, s)
		return nil
	})
	if err != nil && !errors.Is(err, errPastCutoff) {
		return nil, false, err
	}
	return out, more, nil
}
