package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
)

// Channel is what the log says about one channel's ingest: the last successful run
// (channels.synced) and the last failure (channels.failed).
type Channel struct {
	// Channel is the subject token: the bare id, or @username before it was resolved.
	Channel string `json:"channel"`
	// Posts counts the channel's posts.parsed facts on the log.
	Posts       uint64     `json:"posts"`
	LastSync    *time.Time `json:"last_sync,omitempty"`
	LastNew     int        `json:"last_sync_new"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	RetryAt     *time.Time `json:"retry_at,omitempty"`
	// Failing: the last failure is newer than the last successful sync.
	Failing bool `json:"failing"`
}

func (d *doctor) channels(ctx context.Context) error {
	s, err := d.js.Stream(ctx, topology.LogStream)
	if err != nil {
		return err
	}
	byName := map[string]*Channel{}
	get := func(token string) *Channel {
		c := byName[token]
		if c == nil {
			c = &Channel{Channel: token}
			byName[token] = c
		}
		return c
	}
	for _, t := range []events.Type{events.TypeChannelSynced, events.TypeChannelFailed} {
		spec, ok := events.Lookup(t)
		if !ok {
			return fmt.Errorf("event type %s is not registered", t)
		}
		prefix := spec.Subject + "."
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
		if err != nil {
			return fmt.Errorf("subjects of %s: %w", t, err)
		}
		for subj := range info.State.Subjects {
			m, err := s.GetLastMsgForSubject(ctx, subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("last %s: %w", subj, err)
			}
			c := get(strings.TrimPrefix(subj, prefix))
			ev, err := events.Decode(events.Header(m.Header), m.Data)
			if err != nil {
				d.problem(SeverityWarn, "channel", c.Channel, "last %s (seq %d) cannot be decoded: %v", t, m.Sequence, err)
				continue
			}
			switch p := ev.Data.(type) {
			case *events.ChannelSynced:
				at := p.FinishedAt.UTC()
				c.LastSync, c.LastNew = &at, p.New
			case *events.ChannelFailed:
				at := p.At.UTC()
				c.LastErrorAt, c.LastError = &at, strings.TrimSpace(p.Code+": "+p.Reason)
				if !p.RetryAt.IsZero() {
					r := p.RetryAt.UTC()
					c.RetryAt = &r
				}
			}
		}
	}
	parsed, ok := events.Lookup(events.TypePostParsed)
	if !ok {
		return fmt.Errorf("event type %s is not registered", events.TypePostParsed)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(parsed.Subject+".>"))
	if err != nil {
		return fmt.Errorf("subjects of %s: %w", events.TypePostParsed, err)
	}
	for subj, n := range info.State.Subjects {
		get(strings.TrimPrefix(subj, parsed.Subject+".")).Posts = n
	}
	d.r.Channels = []Channel{}
	for _, c := range byName {
		c.Failing = c.LastErrorAt != nil && (c.LastSync == nil || c.LastErrorAt.After(*c.LastSync))
		if c.Failing {
			d.problem(SeverityWarn, "channel", c.Channel, "failing since %s: %s", c.LastErrorAt.Format(time.RFC3339), c.LastError)
		}
		d.r.Channels = append(d.r.Channels, *c)
	}
	slices.SortFunc(d.r.Channels, func(a, b Channel) int { return cmp.Compare(a.Channel, b.Channel) })
	return nil
}
