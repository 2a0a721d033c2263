package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/logscan"
)

// ErrChannelRef is returned for a `channels add/rm` argument that names no channel.
var ErrChannelRef = errors.New("not a channel: want @name, name, t.me/name, https://t.me/name or a channel id (1234567890 or -1001234567890)")

// ChannelRef is a parsed channel argument: an id (bare positive) or a username.
type ChannelRef struct {
	ID       events.ChannelID
	Username string
}

func (r ChannelRef) String() string {
	if r.ID.Valid() {
		return r.ID.String()
	}
	return "@" + r.Username
}

// ParseChannelRef accepts @name, name, t.me/name, https://t.me/name (also telegram.me,
// t.me/s/name and post links t.me/name/123), t.me/c/<id>/… and channel ids in both forms
// (1234567890 and -1001234567890); ids come out bare.
func ParseChannelRef(s string) (ChannelRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ChannelRef{}, ErrChannelRef
	}
	if id, err := events.ParseChannelID(s); err == nil {
		return ChannelRef{ID: id}, nil
	}
	if strings.HasPrefix(s, "-") || isDigits(s) {
		return ChannelRef{}, fmt.Errorf("%w: %q", ErrChannelRef, s)
	}
	name := strings.TrimPrefix(s, "@")
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "tg://") {
		u, err := url.Parse(s)
		if err != nil {
			return ChannelRef{}, fmt.Errorf("%w: %q", ErrChannelRef, s)
		}
		name = u.Query().Get("domain")
	} else if strings.Contains(lower, "t.me/") || strings.Contains(lower, "telegram.me/") {
		raw := s
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return ChannelRef{}, fmt.Errorf("%w: %q", ErrChannelRef, s)
		}
		host := strings.TrimPrefix(strings.ToLower(u.Host), "www.")
		if host != "t.me" && host != "telegram.me" {
			return ChannelRef{}, fmt.Errorf("%w: %q", ErrChannelRef, s)
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		switch {
		case parts[0] == "joinchat" || strings.HasPrefix(parts[0], "+"):
			return ChannelRef{}, fmt.Errorf("%w: %q is an invite link; ingest follows public channels", ErrChannelRef, s)
		case len(parts) >= 2 && parts[0] == "c":
			id, err := events.ParseChannelID(parts[1])
			if err != nil {
				return ChannelRef{}, fmt.Errorf("%w: %q", ErrChannelRef, s)
			}
			return ChannelRef{ID: id}, nil
		case len(parts) >= 2 && parts[0] == "s":
			name = parts[1]
		default:
			name = parts[0]
		}
		name = strings.TrimPrefix(name, "@")
	}
	if !events.ValidUsername(name) {
		return ChannelRef{}, fmt.Errorf("%w: %q", ErrChannelRef, s)
	}
	return ChannelRef{Username: name}, nil
}

func isDigits(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// AddChannel publishes channels.subscribed for ref (`tgflow channels add`); ingest
// resolves a username once and backfills the channel at once, as deep as backfill says
// (zero fields: TGFLOW_BACKFILL_MESSAGES / TGFLOW_BACKFILL_DAYS).
func AddChannel(ctx context.Context, js jetstream.JetStream, ref string, backfill events.Backfill) (events.Event, error) {
	r, err := ParseChannelRef(ref)
	if err != nil {
		return events.Event{}, err
	}
	now := time.Now().UTC()
	p := &events.ChannelSubscribed{ChannelID: r.ID, Username: r.Username, Backfill: backfill, At: now}
	// Each command is its own fact: re-adding after a removal must not be deduplicated.
	ev := events.New(events.ProducerCLI, p, now, now.Format(time.RFC3339Nano))
	return ev, publishOne(ctx, js, ev)
}

// RemoveChannel publishes channels.unsubscribed for ref (`tgflow channels rm`). Its facts
// stay in the log; ingest keeps its cursor, so adding it again resumes where it stopped.
func RemoveChannel(ctx context.Context, js jetstream.JetStream, ref string) (events.Event, error) {
	r, err := ParseChannelRef(ref)
	if err != nil {
		return events.Event{}, err
	}
	now := time.Now().UTC()
	p := &events.ChannelUnsubscribed{ChannelID: r.ID, Username: r.Username, At: now}
	ev := events.New(events.ProducerCLI, p, now, now.Format(time.RFC3339Nano))
	return ev, publishOne(ctx, js, ev)
}

func publishOne(ctx context.Context, js jetstream.JetStream, ev events.Event) error {
	p := &publisher{js: js, reg: events.Default}
	_, err := p.publish(ctx, []events.Event{ev})
	return err
}

// ChannelInfo is one line of `tgflow channels ls`.
type ChannelInfo struct {
	ChannelID  events.ChannelID `json:"channel_id,omitempty"`
	Username   string           `json:"username,omitempty"`
	Title      string           `json:"title,omitempty"`
	Subscribed bool             `json:"subscribed"`
	// Waiting is set when the channel's last channels.subscribed/unsubscribed fact is on the
	// log but ingest has not applied it yet (not running, not configured, or behind):
	// Subscribed says what the log asks for; the other fields are what ingest knew before
	// (nothing, for a channel it never saw).
	Waiting bool `json:"waiting_for_ingest,omitempty"`
	// Resolved is false for a channel subscribed by username that ingest has not
	// resolved yet.
	Resolved bool `json:"resolved"`
	// Due is set for a new or re-added channel waiting for its first run.
	Due       bool      `json:"due,omitempty"`
	Cursor    int64     `json:"cursor"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	ErrorCode string    `json:"error_code,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
}

// ListChannels lists every channel at once (`tgflow channels ls`): the subscriptions are
// the channels.subscribed/unsubscribed facts on the log, merged with what ingest made of
// them in its registry (the channels bucket) and cursors. A subscription ingest has not
// applied yet — everything `channels add` did while ingest was not running — is listed
// with Waiting set.
func ListChannels(ctx context.Context, js jetstream.JetStream) ([]ChannelInfo, error) {
	kv, err := js.KeyValue(ctx, topology.BucketChannels)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", topology.BucketChannels, err)
	}
	ckv, err := js.KeyValue(ctx, topology.BucketCursors)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", topology.BucketCursors, err)
	}
	// The ack floor is read before the facts: a fact applied meanwhile is at worst shown as
	// waiting, never one still waiting as applied.
	applied, err := ingestAckFloor(ctx, js)
	if err != nil {
		return nil, err
	}
	cmds, err := subscriptionCommands(ctx, js)
	if err != nil {
		return nil, err
	}
	recs, err := (&registry{kv: kv}).records(ctx)
	if err != nil {
		return nil, err
	}
	cur := &cursors{kv: ckv}
	out := make([]ChannelInfo, 0, len(recs))
	byID, byName := map[events.ChannelID]int{}, map[string]int{}
	for _, r := range recs {
		// One channel can have two records for a moment: ingest resolving a username writes
		// ch.<id> before it deletes pending.<username>. Records come sorted by key, ch.* first:
		// the later one of a channel already listed is that leftover.
		if _, dup := byID[r.ChannelID]; r.ChannelID.Valid() && dup {
			continue
		}
		if _, dup := byName[strings.ToLower(r.Username)]; !r.ChannelID.Valid() && r.Username != "" && dup {
			continue
		}
		info := ChannelInfo{ChannelID: r.ChannelID, Username: r.Username, Title: r.Title, Subscribed: r.Subscribed,
			Resolved: r.ChannelID.Valid(), Due: r.Due, Cursor: r.Cursor, LastSync: r.LastSync,
			LastError: r.LastError, ErrorCode: r.ErrorCode, RetryAt: r.RetryAt}
		if r.ChannelID.Valid() {
			c, _, err := cur.get(ctx, r.ChannelID)
			if err != nil {
				return nil, err
			}
			info.Cursor = c
			byID[r.ChannelID] = len(out)
		}
		if r.Username != "" {
			byName[strings.ToLower(r.Username)] = len(out)
		}
		out = append(out, info)
	}
	for _, c := range cmds {
		var i int
		var known bool
		if c.ChannelID.Valid() {
			i, known = byID[c.ChannelID]
		} else {
			i, known = byName[strings.ToLower(c.Username)]
		}
		waiting := c.Seq > applied
		switch {
		case known && waiting:
			out[i].Waiting, out[i].Subscribed = true, c.Subscribed
		case !known && c.Subscribed:
			out = append(out, ChannelInfo{ChannelID: c.ChannelID, Username: c.Username, Subscribed: c.Subscribed,
				Resolved: c.ChannelID.Valid(), Waiting: waiting})
			if c.ChannelID.Valid() {
				byID[c.ChannelID] = len(out) - 1
			} else {
				byName[strings.ToLower(c.Username)] = len(out) - 1
			}
		}
	}
	return out, nil
}

// subscriptionCommand is the last channels.subscribed or channels.unsubscribed fact of one
// channel reference (an id, or a username compared without case).
type subscriptionCommand struct {
	Seq        uint64
	ChannelID  events.ChannelID
	Username   string
	Subscribed bool
}

// subscriptionCommands reads every channels.subscribed and channels.unsubscribed fact of the
// log (direct gets: no consumer is created) and returns the last one of each channel
// reference, in log order.
func subscriptionCommands(ctx context.Context, js jetstream.JetStream) ([]subscriptionCommand, error) {
	last := map[string]subscriptionCommand{}
	for _, t := range []events.Type{events.TypeChannelSubscribed, events.TypeChannelUnsubscribed} {
		spec, ok := events.Lookup(t)
		if !ok {
			return nil, fmt.Errorf("event type %s is not registered", t)
		}
		err := logscan.Scan(ctx, js, spec.Filter(), time.Time{}, func(m *nats.Msg) error {
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return fmt.Errorf("%s: a message without a sequence: %w", m.Subject, err)
			}
			ev, err := events.Decode(events.Header(m.Header), m.Data)
			if err != nil {
				// The ingest stage dead-letters such a fact; it subscribes nothing.
				return nil
			}
			var c subscriptionCommand
			switch p := ev.Data.(type) {
			case *events.ChannelSubscribed:
				c = subscriptionCommand{Seq: seq, ChannelID: p.ChannelID, Username: p.Username, Subscribed: true}
			case *events.ChannelUnsubscribed:
				c = subscriptionCommand{Seq: seq, ChannelID: p.ChannelID, Username: p.Username}
			default:
				return nil
			}
			key := "@" + strings.ToLower(c.Username)
			if c.ChannelID.Valid() {
				key = c.ChannelID.String()
			}
			if c.Seq > last[key].Seq {
				last[key] = c
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("channel subscriptions on the log: %w", err)
		}
	}
	out := make([]subscriptionCommand, 0, len(last))
	for _, c := range last {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// ingestAckFloor is the log sequence up to which the ingest consumer has applied every
// subscription fact; 0 when the consumer does not exist yet.
func ingestAckFloor(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	c, err := js.Consumer(ctx, topology.LogStream, topology.ConsumerIngest)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", topology.ConsumerIngest, err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", topology.ConsumerIngest, err)
	}
	return ci.AckFloor.Stream, nil
}
