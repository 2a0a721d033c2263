package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/logscan"
	"github.com/tgflow/tgflow/services/ingest/telegram"
)

// flushSize is how many messages are published together before the cursor moves.
const flushSize = telegram.PageSize

// Skip reasons of whole messages (channels.synced skipped counts; media reasons come from
// package telegram).
const (
	SkipService = "service message"
	SkipEmpty   = "empty message"
)

// channelRun is one read of one channel.
type channelRun struct {
	s      *Service
	ch     telegram.Channel
	cursor int64
	crev   uint64
	// since is when the cursor was last set (zero: never). A post of the channel on the
	// log after that time was published by a run interrupted before it moved the cursor
	// (or by the export importer); onLog holds their ids once the first flush looked.
	since time.Time
	onLog map[string]bool
	st    *events.ChannelSynced
}

// publish publishes evs to the log (see publisher) and counts the facts the log already
// had in tgflow_ingest_duplicates_total.
func (s *Service) publish(ctx context.Context, evs []events.Event) (dups int, err error) {
	dups, err = s.pub.publish(ctx, evs)
	s.metrics.duplicates.Add(float64(dups))
	return dups, err
}

// syncChannel reads the messages above the cursor (or the backfill of a new channel),
// publishes them, moves the cursor, completes albums, rechecks recent posts when due, and
// ends with a channels.synced fact.
func (s *Service) syncChannel(ctx context.Context, r *record, ch telegram.Channel, start time.Time) (*events.ChannelSynced, error) {
	cursor, crev, since, err := s.cur.entry(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	run := &channelRun{s: s, ch: ch, cursor: cursor, crev: crev, since: since,
		st: &events.ChannelSynced{ChannelID: ch.ID, Username: validUsername(ch.Username), Title: ch.Title,
			Backfill: cursor == 0, StartedAt: start, Skipped: map[string]int{}}}
	if err := run.readNew(ctx, r); err != nil {
		return nil, err
	}
	if err := run.completeAlbums(ctx); err != nil {
		return nil, err
	}
	rechecked := false
	if s.cfg.RecheckMessages > 0 && run.cursor > 0 && s.now().Sub(r.LastRecheck) >= s.cfg.RecheckInterval {
		if err := run.recheck(ctx); err != nil {
			return nil, err
		}
		rechecked = true
	}
	st := run.st
	st.Cursor = run.cursor
	st.FinishedAt = s.now()
	if len(st.Skipped) == 0 {
		st.Skipped = nil
	}
	ev := events.New(events.ProducerIngest, st, st.FinishedAt, st.StartedAt.Format(time.RFC3339Nano))
	if _, err := s.publish(ctx, []events.Event{ev}); err != nil {
		return nil, err
	}
	err = s.reg.update(ctx, r.key(), func(x *record, found bool) (bool, error) {
		if !found {
			return false, nil
		}
		x.Cursor, x.LastSync, x.Due = run.cursor, st.FinishedAt, false
		x.ErrorCode, x.LastError, x.Failures, x.RetryAt = "", "", 0, time.Time{}
		if rechecked {
			x.LastRecheck = st.FinishedAt
		}
		if ch.Title != "" {
			x.Title = ch.Title
		}
		*r = *x
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.metrics.runs.WithLabelValues("synced").Inc()
	s.log.Info("channel synced", "channel", r.name(), "id", ch.ID, "backfill", st.Backfill, "fetched", st.Fetched,
		"new", st.New, "edited", st.Edited, "deleted", st.Deleted, "media", st.MediaStored, "cursor", st.Cursor)
	return st, nil
}

// depth is the backfill bound of a new channel: messages and days, 0 meaning no bound.
func (s *Service) depth(r *record) (int, time.Time) {
	msgs, days := r.Backfill.Messages, r.Backfill.Days
	if msgs == 0 {
		msgs = s.cfg.BackfillMessages
	}
	if days == 0 {
		days = s.cfg.BackfillDays
	}
	var since time.Time
	if days > 0 {
		since = s.now().AddDate(0, 0, -days)
	}
	return msgs, since
}

// readNew fetches every message above the cursor, newest first with min_id = cursor and
// offset_id paging down, then publishes them oldest first. Nothing is published before
// the pages reach the cursor (or the backfill depth), so the cursor, which moves after
// each acknowledged batch, never passes a message that was not fetched: a Telegram error
// while paging leaves it where it was.
func (run *channelRun) readNew(ctx context.Context, r *record) error {
	s := run.s
	backfill := run.cursor == 0
	maxMsgs, since := s.depth(r)
	limitReached := func(fetched []telegram.Message, m telegram.Message) bool {
		if !backfill {
			return false
		}
		return maxMsgs > 0 && len(fetched) >= maxMsgs || !since.IsZero() && m.Kind != telegram.KindEmpty && m.Date.Before(since)
	}
	var fetched []telegram.Message // newest first
	offset := int64(0)
pages:
	for {
		page, err := s.tg.History(ctx, run.ch, telegram.HistoryQuery{OffsetID: offset, MinID: run.cursor, Limit: telegram.PageSize})
		if err != nil {
			return err
		}
		run.st.Fetched += len(page)
		low := offset
		for _, m := range page {
			if m.ID <= run.cursor || offset > 0 && m.ID >= offset {
				continue // outside the asked range: never trust a page blindly
			}
			if low == 0 || m.ID < low {
				low = m.ID
			}
			if limitReached(fetched, m) {
				// Stop at the depth, but never inside an album: its items share a grouped id.
				if n := len(fetched); n == 0 || fetched[n-1].GroupedID() == 0 || m.GroupedID() != fetched[n-1].GroupedID() {
					break pages
				}
			}
			fetched = append(fetched, m)
		}
		if len(page) < telegram.PageSize || low == offset || low <= run.cursor+1 {
			break
		}
		offset = low
	}
	slices.SortFunc(fetched, func(a, b telegram.Message) int { return int(a.ID - b.ID) })
	fetched = slices.CompactFunc(fetched, func(a, b telegram.Message) bool { return a.ID == b.ID })
	return run.publishNew(ctx, fetched)
}

// publishMessages stores media and publishes posts oldest first, in batches; the cursor
// moves after each batch the log acknowledged. A media failure publishes what precedes the
// message and stops there.
func (run *channelRun) publishNew(ctx context.Context, msgs []telegram.Message) error {
	s := run.s
	var batch []telegram.Message
	for i := range msgs {
		m := &msgs[i]
		switch m.Kind {
		case telegram.KindService:
			run.skip(m, SkipService)
		case telegram.KindEmpty:
			run.skip(m, SkipEmpty)
		case telegram.KindPost:
			res, err := s.tg.StoreMedia(ctx, run.ch, m)
			if err != nil {
				if ferr := run.flush(ctx, batch); ferr != nil {
					return ferr
				}
				return err
			}
			run.media(m, res)
		}
		batch = append(batch, *m)
		if len(batch) >= flushSize {
			if err := run.flush(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return run.flush(ctx, batch)
}

func (run *channelRun) skip(m *telegram.Message, reason string) {
	run.st.Skipped[reason]++
	run.s.metrics.skipped.WithLabelValues(reason).Inc()
	run.s.log.Info("message skipped", "channel", run.ch.ID, "message", m.ID, "reason", reason)
}

func (run *channelRun) media(m *telegram.Message, res telegram.MediaResult) {
	run.st.MediaStored += res.Stored
	for _, reason := range res.Skipped {
		run.st.Skipped[reason]++
		run.s.metrics.skipped.WithLabelValues(metricReason(reason)).Inc()
		run.s.log.Info("media skipped", "channel", run.ch.ID, "message", m.ID, "reason", reason)
	}
}

// metricReason keeps the label set small: "unsupported media: poll" → "unsupported media".
func metricReason(r string) string {
	if strings.HasPrefix(r, telegram.SkipUnsupportedPrefix) {
		return strings.TrimSuffix(telegram.SkipUnsupportedPrefix, ": ")
	}
	return r
}

// flush publishes the posts of a batch, waits for the log, records album progress and the
// recheck snapshot, then moves the cursor to the batch's last message.
func (run *channelRun) flush(ctx context.Context, batch []telegram.Message) error {
	if len(batch) == 0 {
		return nil
	}
	s := run.s
	var evs []events.Event
	var posts []*events.Post
	for i := range batch {
		if p := batch[i].Post; p != nil && batch[i].Kind == telegram.KindPost {
			evs = append(evs, events.PostEvent(&events.PostParsed{Post: *p}))
			posts = append(posts, p)
		}
	}
	evs, err := run.notOnLog(ctx, evs)
	if err != nil {
		return err
	}
	dups, err := s.publish(ctx, evs)
	if err != nil {
		return err
	}
	run.st.New += len(evs) - dups
	s.metrics.posts.WithLabelValues("parsed").Add(float64(len(evs) - dups))
	if err := run.recordAlbums(ctx, posts); err != nil {
		return err
	}
	if err := run.recordRecent(ctx, posts); err != nil {
		return err
	}
	last := batch[len(batch)-1].ID
	if last <= run.cursor {
		return nil
	}
	rev, err := s.cur.set(ctx, run.ch.ID, last, run.crev)
	if err != nil {
		return err
	}
	run.cursor, run.crev = last, rev
	return nil
}

// notOnLog drops the posts the log already has above the cursor: a run stopped between
// its publish and its cursor update published them, and the log's duplicate window may
// have passed since. The log is read once per run, at the first batch with posts.
func (run *channelRun) notOnLog(ctx context.Context, evs []events.Event) ([]events.Event, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	if run.onLog == nil {
		subj, err := evs[0].NATSSubject(events.Default)
		if err != nil {
			return nil, err
		}
		ids, err := logscan.IDs(ctx, run.s.js, subj, run.since)
		if err != nil {
			return nil, fmt.Errorf("channel %s: posts above the cursor: %w", run.ch.ID, err)
		}
		run.onLog = ids
	}
	out := dropIDs(evs, run.onLog)
	if n := len(evs) - len(out); n > 0 {
		run.s.log.Info("posts already on the log, not published again", "channel", run.ch.ID, "posts", n)
	}
	return out, nil
}

// unpublished drops the events the log got at or after since, reading each subject of
// evs once.
func (s *Service) unpublished(ctx context.Context, evs []events.Event, since time.Time) ([]events.Event, error) {
	onLog := map[string]bool{}
	read := map[string]bool{}
	for _, e := range evs {
		subj, err := e.NATSSubject(events.Default)
		if err != nil {
			return nil, err
		}
		if read[subj] {
			continue
		}
		read[subj] = true
		ids, err := logscan.IDs(ctx, s.js, subj, since)
		if err != nil {
			return nil, err
		}
		maps.Copy(onLog, ids)
	}
	return dropIDs(evs, onLog), nil
}

func dropIDs(evs []events.Event, ids map[string]bool) []events.Event {
	out := make([]events.Event, 0, len(evs))
	for _, e := range evs {
		if !ids[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

// recordAlbums adds published album items to the album progress in KV.
func (run *channelRun) recordAlbums(ctx context.Context, posts []*events.Post) error {
	groups := map[int64][]*events.Post{}
	var order []int64
	for _, p := range posts {
		if p.GroupedID == 0 {
			continue
		}
		if _, ok := groups[p.GroupedID]; !ok {
			order = append(order, p.GroupedID)
		}
		groups[p.GroupedID] = append(groups[p.GroupedID], p)
	}
	for _, g := range order {
		key := albumKey(run.ch.ID, g)
		add := func(a *albumProgress, found bool) (bool, error) {
			if !found {
				*a = albumProgress{ChannelID: run.ch.ID, GroupedID: g}
			}
			for _, p := range groups[g] {
				a.add(p)
			}
			return true, nil
		}
		err := updateJSON(ctx, run.s.state, key, add)
		if errors.Is(err, errUnreadable) {
			// The posts just published are on the log: the rebuilt progress has them.
			if _, err := run.rebuildAlbum(ctx, key, g); err != nil {
				return err
			}
			err = updateJSON(ctx, run.s.state, key, add)
		}
		if err != nil {
			return fmt.Errorf("album %d: %w", g, err)
		}
	}
	return nil
}

// rebuildAlbum replaces unreadable album progress with the album's items as the log has
// them (the progress only ever records published posts), so the album is still published
// once it is complete. Without any item on the log, the entry is removed. ok says whether
// progress was written.
func (run *channelRun) rebuildAlbum(ctx context.Context, key string, grouped int64) (ok bool, err error) {
	s := run.s
	e, err := s.state.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("album progress %s: %w", key, err)
	}
	a := albumProgress{ChannelID: run.ch.ID, GroupedID: grouped}
	subj, err := events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: run.ch.ID}}}).NATSSubject(events.Default)
	if err != nil {
		return false, err
	}
	err = logscan.Scan(ctx, s.js, subj, time.Time{}, func(m *nats.Msg) error {
		ev, err := events.Decode(events.Header(m.Header), m.Data)
		if err != nil {
			return fmt.Errorf("album progress %s: rebuild from the log: %w", key, err)
		}
		if p, ok := ev.Data.(*events.PostParsed); ok && p.GroupedID == grouped {
			a.add(&p.Post)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(a.Items) == 0 {
		s.log.Warn("unreadable album progress without any item on the log: removed", "key", key)
		if err := s.state.Delete(ctx, key, lastRevision(e.Revision())); err != nil {
			return false, fmt.Errorf("album progress %s: remove: %w", key, err)
		}
		return false, nil
	}
	if _, err := putJSON(ctx, s.state, key, a, e.Revision()); err != nil {
		return false, fmt.Errorf("album progress %s: %w", key, err)
	}
	s.log.Warn("unreadable album progress rebuilt from the log", "key", key, "items", len(a.Items))
	return true, nil
}

// completeAlbums publishes albums.parsed for every album of the channel whose items are
// all known, once: its progress entry is deleted after the log acknowledged the fact. A
// run stopped in between (or a failed delete) leaves the entry; the next run finds the
// fact on the log after the entry's time and only deletes it.
func (run *channelRun) completeAlbums(ctx context.Context) error {
	s := run.s
	es, err := entries(ctx, s.state, prefixAlbum+run.ch.ID.String()+".*")
	if err != nil {
		return err
	}
	now := s.now()
	for _, e := range es {
		var a albumProgress
		if err := jsonUnmarshal(e.Value(), &a); err != nil || len(a.Items) == 0 {
			s.log.Warn("unreadable album progress", "key", e.Key(), "err", err)
			g, perr := strconv.ParseInt(strings.TrimPrefix(e.Key(), prefixAlbum+run.ch.ID.String()+"."), 10, 64)
			if perr != nil {
				return fmt.Errorf("album progress %s: not an album key: %w", e.Key(), perr)
			}
			ok, err := run.rebuildAlbum(ctx, e.Key(), g)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			// Read again: complete or not, the next run sees readable progress.
			ne, err := s.state.Get(ctx, e.Key())
			if err != nil {
				return fmt.Errorf("album progress %s: %w", e.Key(), err)
			}
			if err := jsonUnmarshal(ne.Value(), &a); err != nil {
				return fmt.Errorf("album progress %s: %w: %w", e.Key(), errUnreadable, err)
			}
			e = ne
		}
		if !a.complete(run.cursor, now) {
			continue
		}
		ev := albumEvent(a.payload())
		todo, err := s.unpublished(ctx, []events.Event{ev}, e.Created())
		if err != nil {
			return fmt.Errorf("album progress %s: %w", e.Key(), err)
		}
		if len(todo) == 0 {
			s.log.Info("album already on the log, not published again", "key", e.Key())
		} else {
			if _, err := s.publish(ctx, []events.Event{ev}); err != nil {
				return err
			}
			s.metrics.posts.WithLabelValues("album").Inc()
		}
		if err := s.state.Delete(ctx, e.Key(), lastRevision(e.Revision())); err != nil {
			return fmt.Errorf("album %d published; its progress %s stays until a later run removes it: %w", a.GroupedID, e.Key(), err)
		}
	}
	return nil
}

// recordRecent adds published posts to the recheck snapshot.
func (run *channelRun) recordRecent(ctx context.Context, posts []*events.Post) error {
	n := run.s.cfg.RecheckMessages
	if n == 0 || len(posts) == 0 {
		return nil
	}
	return updateJSON(ctx, run.s.state, recentKey(run.ch.ID), func(r *recent, _ bool) (bool, error) {
		if r.Posts == nil {
			r.Posts = map[int64]postState{}
		}
		for _, p := range posts {
			r.Posts[p.MessageID] = stateOf(p)
		}
		r.trim(n)
		return true, nil
	})
}
