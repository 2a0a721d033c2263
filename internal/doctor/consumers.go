package doctor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/topology"
)

// Consumer states.
const (
	StateOK         = "ok"
	StateIdle       = "idle"
	StateStalled    = "stalled"
	StateDead       = "dead"
	StateLagging    = "lagging"
	StateUnknown    = "unknown"
	StateNotRunning = "not running"
	StateAbsent     = "absent"
	StatePaused     = "paused"
)

// Consumer is the state of one durable consumer of the log.
type Consumer struct {
	Name     string `json:"name"`
	Declared bool   `json:"declared"`
	Expected bool   `json:"expected"`
	Exists   bool   `json:"exists"`
	// States: ok, idle, or the problems found (stalled, dead, lagging, unknown, not
	// running, absent, paused).
	States       []string   `json:"states"`
	Pending      uint64     `json:"pending"`
	AckPending   int        `json:"ack_pending"`
	Redelivered  int        `json:"redelivered"`
	Waiting      int        `json:"waiting_pulls"`
	Delivered    uint64     `json:"delivered_seq"`
	AckFloor     uint64     `json:"ack_floor_seq"`
	LastDelivery *time.Time `json:"last_delivery,omitempty"`
	LastAck      *time.Time `json:"last_ack,omitempty"`
	Created      time.Time  `json:"created,omitzero"`
}

// consumers reads every consumer of the log and judges each.
func (d *doctor) consumers(ctx context.Context) error {
	s, err := d.js.Stream(ctx, topology.LogStream)
	if err != nil {
		return fmt.Errorf("log stream %s: %w (run `tgflow nats apply`)", topology.LogStream, err)
	}
	d.infos = map[string]*jetstream.ConsumerInfo{}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable == "" && !slices.ContainsFunc(topology.Consumers(), func(c topology.Consumer) bool { return c.Name == ci.Name }) {
			// Ordered readers (logtail, `nats stream view`) are ephemeral: the server removes
			// them after their inactivity threshold, so they cannot leak.
			d.r.EphemeralReaders++
			continue
		}
		d.infos[ci.Name] = ci
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("list consumers of %s: %w", topology.LogStream, err)
	}
	for _, c := range topology.Consumers() {
		d.r.Consumers = append(d.r.Consumers, d.judge(c.Name, true, d.infos[c.Name]))
	}
	var unknown []string
	for name := range d.infos {
		if _, ok := topology.LookupConsumer(name); !ok {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		d.r.Consumers = append(d.r.Consumers, d.judge(name, false, d.infos[name]))
	}
	return nil
}

func (d *doctor) judge(name string, declared bool, ci *jetstream.ConsumerInfo) Consumer {
	c := Consumer{Name: name, Declared: declared, Expected: declared && d.expected[name], Exists: ci != nil}
	add := func(state string) { c.States = append(c.States, state) }
	if ci == nil {
		if c.Expected {
			add(StateAbsent)
			d.problem(SeverityFail, "consumer", name, "absent: its service is expected here but the consumer does not exist (`tgflow nats apply --all`, then start the service)")
		} else {
			add(StateNotRunning)
		}
		return c
	}
	c.Pending, c.AckPending, c.Redelivered, c.Waiting = ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting
	c.Delivered, c.AckFloor = ci.Delivered.Stream, ci.AckFloor.Stream
	c.LastDelivery, c.LastAck, c.Created = ci.Delivered.Last, ci.AckFloor.Last, ci.Created
	if !declared {
		add(StateUnknown)
		d.problem(SeverityFail, "consumer", name, "unknown: a durable consumer the topology does not define (a leak; remove it with `nats consumer rm %s %s`)", topology.LogStream, name)
		return c
	}
	work := ci.NumPending > 0 || ci.NumAckPending > 0
	now := ci.TimeStamp
	if now.IsZero() {
		now = d.o.Now()
	}
	// Idle since the last delivery or ack; a consumer that never delivered, since it was made.
	since := ci.Created
	for _, t := range []*time.Time{ci.Delivered.Last, ci.AckFloor.Last} {
		if t != nil && t.After(since) {
			since = *t
		}
	}
	idle := now.Sub(since)
	if ci.Paused {
		add(StatePaused)
	}
	if !c.Expected {
		add(StateNotRunning)
		if ci.NumWaiting > 0 {
			d.problem(SeverityWarn, "consumer", name, "not expected here, but %d pull(s) are waiting on it: another process runs its service", ci.NumWaiting)
		}
		return c
	}
	switch {
	case work && ci.NumWaiting == 0 && idle >= d.th.DeadAfter:
		add(StateDead)
		d.problem(SeverityFail, "consumer", name, "dead: %d pending and %d unacknowledged, nobody pulling, idle %s", ci.NumPending, ci.NumAckPending, round(idle))
	case work && ci.NumWaiting > 0 && idle >= d.th.StallAfter:
		add(StateStalled)
		why := ""
		if ci.Paused {
			why = " (the consumer is paused)"
		}
		d.problem(SeverityFail, "consumer", name, "stalled: %d pending and %d unacknowledged, %d pull(s) waiting, nothing delivered or acked for %s%s", ci.NumPending, ci.NumAckPending, ci.NumWaiting, round(idle), why)
	}
	if ci.NumPending > d.th.LagMax {
		add(StateLagging)
		d.problem(SeverityFail, "consumer", name, "lagging: %d pending (more than %d)", ci.NumPending, d.th.LagMax)
	}
	if len(c.States) == 0 || (len(c.States) == 1 && c.States[0] == StatePaused) {
		if work {
			add(StateOK)
		} else {
			add(StateIdle)
		}
	}
	return c
}

func round(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
