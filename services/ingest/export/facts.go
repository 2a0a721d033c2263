package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/media"
)

// MediaSink stores media bytes, content-addressed; *media.Store and *media.Memory are
// sinks. Put returns the hex SHA-256 of the bytes; media.ErrTooLarge marks a file over the
// sink's size cap (recorded as skipped), any other error stops Facts.
type MediaSink interface {
	Put(ctx context.Context, r io.Reader, meta media.Meta) (sha string, stored bool, err error)
}

// AlbumEvent is the event of an inferred album; its id derives from the album key.
func AlbumEvent(a *events.AlbumParsed) events.Event {
	return events.New(events.ProducerIngest, a, a.PostedAt)
}

// Facts reads the export again and yields its facts: for each imported channel in file
// order, a posts.parsed event per post in message order, and after the last item of each
// inferred album its albums.parsed event. Media files present in the export are stored
// through sink first (nil sink: none are read, and their Media says SkipNoStore).
//
// An error is yielded once, last: the context ended, the sink failed, or the file changed
// since Open (ErrChanged). Events yielded before it are valid facts.
func (e *Export) Facts(ctx context.Context, sink MediaSink) iter.Seq2[events.Event, error] {
	return func(yield func(events.Event, error) bool) {
		st, err := fs.Stat(e.fsys, e.name)
		if err != nil {
			yield(events.Event{}, fmt.Errorf("export: %w", err))
			return
		}
		if st.Size() != e.size || !st.ModTime().Equal(e.mod) {
			yield(events.Event{}, fmt.Errorf("export: %s: %w", e.name, ErrChanged))
			return
		}
		em := &emitter{ctx: ctx, e: e, sink: sink, yield: yield}
		if e.spool != nil {
			err = em.replay(e.spool.reader())
		} else {
			f, oerr := e.fsys.Open(e.name)
			if oerr != nil {
				yield(events.Event{}, fmt.Errorf("export: %w", oerr))
				return
			}
			defer f.Close()
			err = walk(f, em)
		}
		switch {
		case err == nil, errors.Is(err, errStop):
		case errors.Is(err, ErrMalformed):
			yield(events.Event{}, fmt.Errorf("export: %s: %w: %w", e.name, ErrChanged, err))
		default:
			yield(events.Event{}, err)
		}
	}
}

// emitter is the visitor of Facts.
type emitter struct {
	ctx   context.Context
	e     *Export
	sink  MediaSink
	yield func(events.Event, error) bool
	chat  *Chat
	g     grouper
	w     wireMessage
}

func (em *emitter) chatStart(c *chatState) error {
	if c.ord >= len(em.e.chats) {
		return fmt.Errorf("export: %s: %w: more chats than when opened", em.e.name, ErrChanged)
	}
	em.chat = &em.e.chats[c.ord]
	em.g = grouper{}
	return nil
}

func (em *emitter) message(c *chatState, i int, start int64, raw json.RawMessage, f *fastMessage) error {
	if !em.chat.Imported {
		return nil
	}
	if err := em.ctx.Err(); err != nil {
		return err
	}
	m, ferr := readMessage(raw, f, &em.w)
	if ferr != nil {
		return ferr
	}
	if m.skip != "" {
		return nil
	}
	m.start, m.in, m.index = start, c, i
	return em.post(m)
}

// post stores a post's media and hands it to the album grouper.
func (em *emitter) post(m *message) error {
	for k := range m.media {
		if err := em.load(&m.media[k]); err != nil {
			return err
		}
	}
	return em.g.push(m, em.emit)
}

// replay emits the facts of the posts Open spooled, as walk would from the file.
func (em *emitter) replay(r *spoolReader) error {
	var c *chatState
	for {
		k, ok := r.kind()
		if !ok {
			break
		}
		var err error
		switch {
		case k == recChatStart:
			c = r.chatStart()
			if r.err == nil {
				err = em.chatStart(c)
			}
		case k == recMessage && c != nil:
			m := r.message(c)
			if r.err != nil || !em.chat.Imported {
				break
			}
			if err = em.ctx.Err(); err == nil {
				err = em.post(m)
			}
		case k == recChatEnd && c != nil:
			err = em.chatEnd(c)
			c = nil
		default:
			r.fail(fmt.Errorf("unexpected record %d", k))
		}
		if err != nil {
			return err
		}
	}
	if r.err != nil {
		return r.err
	}
	if c != nil {
		return fmt.Errorf("%w: ends inside a chat", ErrSpool)
	}
	return nil
}

func (em *emitter) chatEnd(*chatState) error {
	if !em.chat.Imported {
		return nil
	}
	return em.g.flush(em.emit)
}

func (em *emitter) emit(u unit) error {
	posts, album, err := u.payloads(em.chat.ChannelID)
	if err != nil {
		return err
	}
	for _, p := range posts {
		if !em.yield(events.PostEvent(p), nil) {
			return errStop
		}
	}
	if album != nil && !em.yield(AlbumEvent(album), nil) {
		return errStop
	}
	return nil
}

// load stores one attachment's file through the sink and records where it went, or why
// it has no bytes.
func (em *emitter) load(r *mediaRef) error {
	if r.rel == "" {
		return nil // the export says why: r.m.Skipped is set
	}
	name := em.e.mediaPath(r.rel)
	f, err := em.e.fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		r.m.Skipped = SkipMissing
		return nil
	}
	if err != nil {
		r.m.Skipped = SkipUnreadable
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		r.m.Skipped = SkipUnreadable
		return nil
	}
	if !st.Mode().IsRegular() {
		r.m.Skipped = SkipMissing
		return nil
	}
	if r.m.Size == 0 {
		r.m.Size = st.Size()
	}
	if em.sink == nil {
		r.m.Skipped = SkipNoStore
		return nil
	}
	sha, _, err := em.sink.Put(em.ctx, f, media.Meta{Name: r.m.FileName, MIME: r.m.MIME})
	if errors.Is(err, media.ErrTooLarge) {
		r.m.Skipped = SkipTooLarge
		return nil
	}
	if err != nil {
		return fmt.Errorf("export: store %s: %w", name, err)
	}
	r.m.SHA256, r.m.ObjectKey = sha, sha
	return nil
}
