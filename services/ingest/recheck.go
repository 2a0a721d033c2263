package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/telegram"
)

var jsonUnmarshal = json.Unmarshal

func lastRevision(rev uint64) jetstream.KVDeleteOpt { return jetstream.LastRevision(rev) }

// recheck refetches the latest TGFLOW_RECHECK_MESSAGES published messages and compares
// them with the snapshot kept when they were published:
//
//   - a newer edit date → posts.edited (the new version, with its media stored);
//   - other views, forwards, replies or reactions → posts.metrics, at most one per post
//     per recheck, its id derived from the observed values and the recheck round;
//   - a post of the snapshot missing from the refetched range (a history gap) is asked
//     for again with channels.getMessages, and only if Telegram answers messageEmpty is it
//     gone → posts.deleted, once (its id is the post key). A gap alone is not enough: a
//     history page may omit a message for other reasons.
//
// The snapshot is saved after the log acknowledged the facts.
func (run *channelRun) recheck(ctx context.Context) error {
	s := run.s
	n := s.cfg.RecheckMessages
	snap, rev, _, err := getJSON[recent](ctx, s.state, recentKey(run.ch.ID))
	if err != nil {
		return err
	}
	if snap.Posts == nil {
		snap.Posts = map[int64]postState{}
	}
	var msgs []telegram.Message
	offset := run.cursor + 1
	full := false
	for len(msgs) < n {
		limit := min(telegram.PageSize, n-len(msgs))
		page, err := s.tg.History(ctx, run.ch, telegram.HistoryQuery{OffsetID: offset, Limit: limit})
		if err != nil {
			return err
		}
		low := offset
		for _, m := range page {
			if m.ID < offset {
				msgs = append(msgs, m)
				low = min(low, m.ID)
			}
		}
		if len(page) < limit || low == offset {
			full = true // the channel has no older messages
			break
		}
		offset = low
	}
	// The range the refetch covers: everything up to the cursor, down to its lowest id
	// (or to the first message when the channel has fewer than n).
	covered := int64(1)
	if !full && len(msgs) > 0 {
		covered = msgs[len(msgs)-1].ID
		for _, m := range msgs {
			covered = min(covered, m.ID)
		}
	}
	now := s.now()
	round := now.Truncate(s.cfg.RecheckInterval).Unix()
	seen := map[int64]bool{}
	var evs []events.Event
	for i := range msgs {
		m := &msgs[i]
		if m.Kind == telegram.KindEmpty {
			continue
		}
		seen[m.ID] = true
		if m.Kind != telegram.KindPost {
			continue
		}
		p := m.Post
		old, known := snap.Posts[m.ID]
		cur := stateOf(p)
		if !known {
			snap.Posts[m.ID] = cur
			continue
		}
		if p.EditDate > old.Version {
			res, err := s.tg.StoreMedia(ctx, run.ch, m)
			if err != nil {
				return err
			}
			run.media(m, res)
			e := &events.PostEdited{Post: *p, PreviousVersion: old.Version}
			evs = append(evs, events.New(events.ProducerIngest, e, p.Date, strconv.FormatInt(p.EditDate, 10)))
			run.st.Edited++
		}
		if cur.Metrics != old.Metrics {
			mp := &events.PostMetrics{PostRef: p.PostRef, Views: p.Views, Forwards: p.Forwards, Replies: p.Replies, Reactions: p.Reactions, ObservedAt: now}
			evs = append(evs, events.New(events.ProducerIngest, mp, now, cur.Metrics, strconv.FormatInt(round, 10)))
		}
		snap.Posts[m.ID] = cur
	}
	var gone []int64
	for id := range snap.Posts {
		if id >= covered && id <= run.cursor && !seen[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for len(gone) > 0 {
		chunk := gone[:min(len(gone), telegram.PageSize)]
		gone = gone[len(chunk):]
		got, err := s.tg.Messages(ctx, run.ch, chunk)
		if err != nil {
			return err
		}
		for _, m := range got {
			if m.Kind != telegram.KindEmpty {
				continue // still there: the history page left it out
			}
			d := &events.PostDeleted{PostRef: events.PostRef{ChannelID: run.ch.ID, MessageID: m.ID}, DeletedAt: now}
			evs = append(evs, events.New(events.ProducerIngest, d, now))
			delete(snap.Posts, m.ID)
			run.st.Deleted++
		}
	}
	evs, err = run.recheckUnpublished(ctx, evs)
	if err != nil {
		return err
	}
	if _, err := s.publish(ctx, evs); err != nil {
		return err
	}
	for _, e := range evs {
		s.metrics.posts.WithLabelValues(factLabel(e.Type)).Inc()
	}
	snap.trim(n)
	_, err = putJSON(ctx, s.state, recentKey(run.ch.ID), snap, rev)
	return err
}

// factLabel is the short name of a post fact type: "org.tgflow.post.edited.v1" → "edited".
func factLabel(t events.Type) string {
	parts := strings.Split(string(t), ".")
	if len(parts) < 2 {
		return string(t)
	}
	return parts[len(parts)-2]
}

// recheckUnpublished drops the recheck facts a previous recheck published without saving
// its snapshot (stopped in between; the log's duplicate window may have passed since),
// then marks the time of this recheck's publish: the recheck.<channel> entry is written
// before every publish, so whatever a recheck published is on the log after it.
func (run *channelRun) recheckUnpublished(ctx context.Context, evs []events.Event) ([]events.Event, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	s := run.s
	key := recheckKey(run.ch.ID)
	e, err := s.state.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("recheck mark %s: %w", key, err)
	default:
		if evs, err = s.unpublished(ctx, evs, e.Created()); err != nil {
			return nil, fmt.Errorf("recheck of %s: %w", run.ch.ID, err)
		}
	}
	if _, err := s.state.Put(ctx, key, []byte(s.now().Format(time.RFC3339Nano))); err != nil {
		return nil, fmt.Errorf("recheck mark %s: %w", key, err)
	}
	return evs, nil
}
