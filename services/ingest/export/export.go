package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tgflow/tgflow/events"
)

// Origin is events.Post.Origin of every post read from an export.
const Origin = "export"

// Layout is the shape of an export file.
type Layout string

const (
	// LayoutChat is the result.json of one chat: {"name", "type", "id", "messages"}.
	LayoutChat Layout = "chat"
	// LayoutAccount is a whole-account export: {"chats": {"list": [...]}, "left_chats": …}.
	LayoutAccount Layout = "account"
)

// Chat types that are imported; every other type is skipped.
const (
	ChatPublicChannel  = "public_channel"
	ChatPrivateChannel = "private_channel"
)

// Chat is one chat of the export and what Open found in it.
type Chat struct {
	// Path is the chat's JSON path: "chats.list[2]", "left_chats.list[0]", or "" for a
	// one-chat export.
	Path string
	Name string
	Type string
	// ChannelID is set for channels.
	ChannelID events.ChannelID
	// Imported says whether Facts emits the chat's posts; SkipReason says why not.
	Imported   bool
	SkipReason string
	// Messages counts every message of the chat; Posts those emitted as posts; Skipped the
	// rest by reason.
	Messages int
	Posts    int
	Skipped  map[string]int
	Albums   int
	// LastMessageID is the highest message id of the chat, posts and skipped messages alike:
	// where a live sync can go on from.
	LastMessageID int64
}

// Stats sums up an export as Open validated it. Media counts are what the export itself
// says; whether bytes were stored is only known during Facts (see the events' Media).
type Stats struct {
	Chats        int            // chats in the file
	Channels     int            // channel chats, all imported
	ChatsSkipped map[string]int // chats not imported, by reason
	Messages     int            // messages of the imported channels
	Posts        int            // posts Facts emits
	Albums       int            // albums Facts emits (all inferred)
	Skipped      map[string]int // messages of imported channels that are not posts, by reason
	Media        int            // attachments of the posts
	MediaFiles   int            // attachments whose file is in the export folder
	MediaSkipped map[string]int // attachments without a file, by reason
}

// Export is a validated Telegram Desktop JSON export. Open reads the whole file once to
// validate it; Facts reads it again to emit its facts, so the file is never held in memory.
type Export struct {
	fsys   fs.FS
	name   string
	dir    string
	root   *os.Root
	size   int64
	mod    time.Time
	layout Layout
	chats  []Chat
	stats  Stats
	spool  *spool // nil unless opened with Spool
}

// Open validates the export at path: a result.json file, or the folder that holds one.
// Media files are read from the file's folder and never from outside it. Close the
// Export when done.
func Open(p string, opts ...Option) (*Export, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	dir, name := filepath.Dir(p), filepath.Base(p)
	if st.IsDir() {
		dir, name = p, "result.json"
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	e, err := OpenFS(root.FS(), name, opts...)
	if err != nil {
		_ = root.Close()
		return nil, err
	}
	e.root = root
	return e, nil
}

// OpenFS validates the export named name (a slash path) inside fsys; media paths are
// relative to name's folder. A malformed file fails with a *ParseError.
func OpenFS(fsys fs.FS, name string, opts ...Option) (*Export, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, fmt.Errorf("export: %q is not a valid path in the file system", name)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	e := &Export{fsys: fsys, name: name, dir: path.Dir(name)}
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("export: %s is a directory", name)
	}
	e.size, e.mod = st.Size(), st.ModTime()
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	v, err := e.validate(f, o, fastWalk)
	if errors.Is(err, errFallback) {
		// Not for the fast reader (malformed, or an unusual layout): read the file again
		// with the exact one, which says what is wrong and where.
		e.chats, e.stats = nil, Stats{}
		f2, oerr := fsys.Open(name)
		if oerr != nil {
			return nil, fmt.Errorf("export: %w", oerr)
		}
		defer f2.Close()
		v, err = e.validate(f2, o, walk)
	}
	if err != nil {
		return nil, err
	}
	e.spool = v.spool
	e.layout = LayoutAccount
	if len(e.chats) == 1 && e.chats[0].Path == "" {
		e.layout = LayoutChat
	}
	e.summarise()
	return e, nil
}

// validate reads f with a walker into a fresh validator (and spool, if asked for); on an
// error the spool is removed.
func (e *Export) validate(f io.Reader, o options, walker func(io.Reader, visitor) error) (*validator, error) {
	v := &validator{e: e}
	if o.spool {
		var err error
		if v.spool, err = newSpool(o.spoolDir); err != nil {
			return nil, err
		}
	}
	err := walker(f, v)
	if err == nil && v.spool != nil {
		err = v.spool.finish()
	}
	if err != nil {
		if v.spool != nil {
			err = errors.Join(err, v.spool.close())
		}
		return nil, err
	}
	return v, nil
}

// Close releases the folder opened by Open and the spool.
func (e *Export) Close() error {
	var err error
	if e.spool != nil {
		err = e.spool.close()
		e.spool = nil
	}
	if e.root != nil {
		err = errors.Join(err, e.root.Close())
		e.root = nil
	}
	return err
}

// Layout is the shape of the file.
func (e *Export) Layout() Layout { return e.layout }

// Stats sums up the export.
func (e *Export) Stats() Stats {
	s := e.stats
	s.ChatsSkipped = maps.Clone(s.ChatsSkipped)
	s.Skipped = maps.Clone(s.Skipped)
	s.MediaSkipped = maps.Clone(s.MediaSkipped)
	return s
}

// Chats lists every chat of the file in order, imported or not.
func (e *Export) Chats() []Chat {
	out := slices.Clone(e.chats)
	for i := range out {
		out[i].Skipped = maps.Clone(out[i].Skipped)
	}
	return out
}

func (e *Export) summarise() {
	s := &e.stats
	s.Chats = len(e.chats)
	for _, c := range e.chats {
		if !c.Imported {
			inc(&s.ChatsSkipped, c.SkipReason, 1)
			continue
		}
		s.Channels++
		s.Messages += c.Messages
		s.Posts += c.Posts
		s.Albums += c.Albums
		for k, n := range c.Skipped {
			inc(&s.Skipped, k, n)
		}
	}
}

func inc(m *map[string]int, k string, n int) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[k] += n
}

func isChannel(typ string) bool { return typ == ChatPublicChannel || typ == ChatPrivateChannel }

// validator is the visitor of Open: it parses everything Facts will, without media bytes,
// and records each chat's header and counts.
type validator struct {
	e     *Export
	spool *spool // nil: no spool is written
	g     grouper
	w     wireMessage
	media struct {
		n, files int
		skipped  map[string]int
	}
}

func (v *validator) chatStart(c *chatState) error {
	v.e.chats = append(v.e.chats, Chat{Path: c.path})
	v.g = grouper{}
	v.media.n, v.media.files, v.media.skipped = 0, 0, nil
	if v.spool != nil {
		return v.spool.chatStart(c)
	}
	return nil
}

func (v *validator) chat() *Chat { return &v.e.chats[len(v.e.chats)-1] }

func (v *validator) message(c *chatState, i int, start int64, raw json.RawMessage, f *fastMessage) error {
	ch := v.chat()
	ch.Messages++
	m, ferr := readMessage(raw, f, &v.w)
	if ferr != nil {
		return ferr
	}
	ch.LastMessageID = max(ch.LastMessageID, m.id)
	if m.skip != "" {
		inc(&ch.Skipped, m.skip, 1)
		return nil
	}
	m.start, m.in, m.index = start, c, i
	ch.Posts++
	// Files are only looked for in chats that may be channels; the header usually comes
	// first, so other chats cost nothing.
	if typ, _ := str(c.typ.raw); len(c.typ.raw) == 0 || isChannel(typ) {
		if v.spool != nil {
			if err := v.spool.message(m); err != nil {
				return err
			}
		}
		for _, r := range m.media {
			v.media.n++
			switch reason := v.e.fileState(r); reason {
			case "":
				v.media.files++
			default:
				inc(&v.media.skipped, reason, 1)
			}
		}
	}
	return v.g.push(m, v.check)
}

// check validates the payloads of a unit as Facts will build them; the channel id is not
// known yet, so a stand-in is used.
func (v *validator) check(u unit) error {
	if _, _, err := u.payloads(1); err != nil {
		return err
	}
	if u.album {
		v.chat().Albums++
	}
	return nil
}

func (v *validator) chatEnd(c *chatState) error {
	if err := v.g.flush(v.check); err != nil {
		return err
	}
	if v.spool != nil {
		if err := v.spool.chatEnd(); err != nil {
			return err
		}
	}
	ch := v.chat()
	perr := func(out int64, format string, args ...any) error {
		return &posError{out: out, path: c.path, chat: c.index, msg: -1, reason: fmt.Sprintf(format, args...)}
	}
	name, ferr := str(c.name.raw, "name")
	if ferr != nil {
		return perr(c.name.off, "%s", ferr.reason)
	}
	ch.Name = name
	if len(c.typ.raw) == 0 || isNull(c.typ.raw) {
		return perr(c.start, "chat has no type")
	}
	typ, ferr := str(c.typ.raw, "type")
	if ferr != nil {
		return perr(c.typ.off, "%s", ferr.reason)
	}
	ch.Type = typ
	if !isChannel(typ) {
		ch.SkipReason = "not a channel: " + typ
		return nil
	}
	if len(c.id.raw) == 0 || isNull(c.id.raw) {
		return perr(c.start, "channel has no id")
	}
	id, err := channelID(c.id.raw)
	if err != nil {
		return perr(c.id.off, "id %s is not a channel id", quote(c.id.raw))
	}
	ch.ChannelID, ch.Imported = id, true
	v.e.stats.Media += v.media.n
	v.e.stats.MediaFiles += v.media.files
	for k, n := range v.media.skipped {
		inc(&v.e.stats.MediaSkipped, k, n)
	}
	return nil
}

// channelID reads a chat id: a bare number (what Telegram Desktop writes), or a string in
// one of the other forms seen in the wild: "1234567890", "-1001234567890",
// "channel1234567890".
func channelID(raw json.RawMessage) (events.ChannelID, error) {
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	case '{', '[', 't', 'f', 'n':
		return 0, errors.New("not a number or string")
	default:
		s = string(raw)
	}
	if len(s) > len("channel") && strings.EqualFold(s[:len("channel")], "channel") {
		s = s[len("channel"):]
	}
	return events.ParseChannelID(s)
}

func (e *Export) mediaPath(rel string) string { return path.Join(e.dir, rel) }

// fileState says why an attachment has no file in the export, or "" when it has one.
func (e *Export) fileState(r mediaRef) string {
	if r.rel == "" {
		return r.m.Skipped
	}
	st, err := fs.Stat(e.fsys, e.mediaPath(r.rel))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return SkipMissing
	case err != nil:
		return SkipUnreadable
	case !st.Mode().IsRegular():
		return SkipMissing
	}
	return ""
}
