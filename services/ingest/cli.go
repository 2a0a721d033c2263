package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
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

// ListChannels reads the channel registry (the channels bucket) and the cursors
// (`tgflow channels ls`). The registry is written by the ingest service: channels added
// while it was not running appear once it has read their channels.subscribed facts.
func ListChannels(ctx context.Context, js jetstream.JetStream) ([]ChannelInfo, error) {
	kv, err := js.KeyValue(ctx, topology.BucketChannels)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", topology.BucketChannels, err)
	}
	ckv, err := js.KeyValue(ctx, topology.BucketCursors)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", topology.BucketCursors, err)
	}
	recs, err := (&registry{kv: kv}).records(ctx)
	if err != nil {
		return nil, err
	}
	cur := &cursors{kv: ckv}
	out := make([]ChannelInfo, 0, len(recs))
	for _, r := range recs {
		info := ChannelInfo{ChannelID: r.ChannelID, Username: r.Username, Title: r.Title, Subscribed: r.Subscribed,
			Resolved: r.ChannelID.Valid(), Due: r.Due, Cursor: r.Cursor, LastSync: r.LastSync,
			LastError: r.LastError, ErrorCode: r.ErrorCode, RetryAt: r.RetryAt}
		if r.ChannelID.Valid() {
			c, _, err := cur.get(ctx, r.ChannelID)
			if err != nil {
				return nil, err
			}
			info.Cursor = c
		}
		out = append(out, info)
	}
	return out, nil
}

// PrintChannels writes channels as a table.
func PrintChannels(w io.Writer, chans []ChannelInfo) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tTITLE\tSTATE\tCURSOR\tLAST SYNC\tLAST ERROR")
	for _, c := range chans {
		user, id, sync := "-", "-", "-"
		if c.Username != "" {
			user = "@" + c.Username
		}
		if c.ChannelID.Valid() {
			id = c.ChannelID.String()
		}
		if !c.LastSync.IsZero() {
			sync = c.LastSync.Local().Format(time.DateTime)
		}
		state := "subscribed"
		switch {
		case !c.Subscribed:
			state = "removed"
		case !c.Resolved:
			state = "resolving"
		case c.Due && c.Cursor == 0:
			state = "backfill"
		case c.Due:
			state = "due"
		}
		errText := "-"
		if c.LastError != "" {
			errText = c.ErrorCode
			if !c.RetryAt.IsZero() {
				errText += " (retry " + c.RetryAt.Local().Format(time.DateTime) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", user, id, oneLine(c.Title), state, c.Cursor, sync, errText)
	}
	tw.Flush()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
