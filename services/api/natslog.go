package api

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/logscan"
)

// NATSLog reads a post's facts from the log with subject-filtered direct gets (no consumer
// is created, so a busy page cannot exhaust the server's consumers), and the consumers' lag
// from their info.
type NATSLog struct {
	JS jetstream.JetStream
}

// maxHistory bounds the facts one post's history returns: a post has a handful (parsed,
// edits, vision, tags, enrichment, embedding, metrics refreshes); more means a runaway
// producer, and the page must stay small.
const maxHistory = 500

// errHistoryFull stops a scan once maxHistory facts were found.
var errHistoryFull = errors.New("history is full")

// History returns the facts whose CloudEvents subject is the post's key, from the post
// subjects of its channel (posts.<fact>.<channel> and posts.<fact>.<qualifier>.<channel>),
// stored at or after since, in log order.
func (l NATSLog) History(ctx context.Context, ch events.ChannelID, msg int64, since time.Time) ([]Fact, error) {
	key := events.PostKey(ch, msg)
	var out []Fact
	for _, subject := range []string{"posts.*." + ch.String(), "posts.*.*." + ch.String()} {
		err := logscan.Scan(ctx, l.JS, subject, since, func(m *nats.Msg) error {
			if m.Header.Get(events.HeaderSubject) != key {
				return nil
			}
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return fmt.Errorf("fact without a sequence on %s: %w", m.Subject, err)
			}
			f := Fact{Seq: seq, Type: m.Header.Get(events.HeaderType), ID: m.Header.Get(events.HeaderID), Subject: key,
				Producer: trimSource(m.Header.Get(events.HeaderSource))}
			if ts := m.Header.Get(events.HeaderTime); ts != "" {
				t, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil {
					return fmt.Errorf("fact %d: ce-time %q: %w", seq, ts, err)
				}
				f.Time = t
			}
			out = append(out, f)
			if len(out) >= maxHistory {
				return errHistoryFull
			}
			return nil
		})
		if errors.Is(err, errHistoryFull) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func trimSource(s string) string {
	if len(s) > len(events.SourcePrefix) && s[:len(events.SourcePrefix)] == events.SourcePrefix {
		return s[len(events.SourcePrefix):]
	}
	return s
}

// Consumers returns the lag of the log's durable consumers, by name.
func (l NATSLog) Consumers(ctx context.Context) ([]ConsumerLag, error) {
	s, err := l.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		return nil, fmt.Errorf("%w: the log stream: %w", ErrUnavailable, err)
	}
	var out []ConsumerLag
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Config.Durable == "" {
			continue // ordered readers and other ephemeral consumers are not the pipeline
		}
		out = append(out, ConsumerLag{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending})
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("%w: list consumers: %w", ErrUnavailable, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
