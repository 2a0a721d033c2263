package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/tgflow/tgflow/events"
)

// Option changes how Open and OpenFS read an export.
type Option func(*options)

type options struct {
	spool    bool
	spoolDir string
}

// Spool makes Open keep what its validation pass parsed in a temporary file in dir (""
// for the system's temporary directory), in a compact binary form, so that Facts reads
// that file instead of parsing the export's JSON a second time. Memory stays bounded by
// one message, as without it; the file takes a fraction of the export's size (a quarter
// for the generated benchmark export: no JSON syntax, no skipped messages). The file
// is unlinked as soon as it is created where the system allows it (so nothing is left
// behind even when the process is killed), else removed by Close or a failed Open.
func Spool(dir string) Option {
	return func(o *options) { o.spool, o.spoolDir = true, dir }
}

// ErrSpool marks a spool file that cannot be written or read back.
var ErrSpool = errors.New("export: spool")

// spool is the file of parsed messages an Export replays in Facts.
type spool struct {
	f       *os.File
	name    string // "" once unlinked
	size    int64  // bytes written
	w       *bufio.Writer
	scratch []byte
}

// Record kinds of the spool. A chat's posts come between its chatStart and chatEnd; chats
// are numbered as the walker numbers them (chatState.ord).
const (
	recChatStart byte = iota + 1
	recMessage
	recChatEnd
)

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "tgflow-export-*.spool")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpool, err)
	}
	s := &spool{f: f, name: f.Name(), w: bufio.NewWriterSize(f, 256<<10)}
	if os.Remove(s.name) == nil {
		s.name = "" // the open file stays readable; the system frees it on close
	}
	return s, nil
}

// close closes and, if still named, removes the spool file.
func (s *spool) close() error {
	err := s.f.Close()
	if s.name != "" {
		err = errors.Join(err, os.Remove(s.name))
		s.name = ""
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSpool, err)
	}
	return nil
}

// finish flushes what was written; the spool is read from then on.
func (s *spool) finish() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrSpool, err)
	}
	s.w = nil
	return nil
}

func (s *spool) chatStart(c *chatState) error {
	b := append(s.scratch[:0], recChatStart)
	b = binary.AppendUvarint(b, uint64(c.ord))
	b = binary.AppendVarint(b, int64(c.index))
	b = appendString(b, c.path)
	return s.write(b)
}

func (s *spool) chatEnd() error { return s.write(append(s.scratch[:0], recChatEnd)) }

func (s *spool) message(m *message) error {
	b := append(s.scratch[:0], recMessage)
	b = binary.AppendVarint(b, m.start)
	b = binary.AppendUvarint(b, uint64(m.index))
	b = appendMessage(b, m)
	return s.write(b)
}

func (s *spool) write(b []byte) error {
	s.scratch = b[:0]
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("%w: %w", ErrSpool, err)
	}
	s.size += int64(len(b))
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// appendMessage encodes what Facts uses of a post: every field of message but where it is
// (written by the caller) and skip (only posts are spooled).
func appendMessage(b []byte, m *message) []byte {
	b = binary.AppendVarint(b, m.id)
	b = appendString(b, m.typ)
	b = appendTime(b, m.date)
	b = binary.AppendVarint(b, m.editDate)
	b = appendString(b, m.text)
	b = binary.AppendUvarint(b, uint64(len(m.entities)))
	for _, e := range m.entities {
		b = appendString(b, e.Type)
		b = binary.AppendVarint(b, int64(e.Offset))
		b = binary.AppendVarint(b, int64(e.Length))
		b = appendString(b, e.URL)
		b = binary.AppendVarint(b, e.UserID)
	}
	b = appendStrings(b, m.links)
	b = appendStrings(b, m.hashtags)
	b = appendStrings(b, m.mentions)
	if f := m.forward; f == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, int64(f.ChannelID))
		b = binary.AppendVarint(b, f.MessageID)
		b = appendString(b, f.FromName)
		b = appendTime(b, f.Date)
		b = appendString(b, f.Author)
	}
	b = appendString(b, m.fwdKey)
	b = binary.AppendVarint(b, m.replyTo)
	b = appendString(b, m.replyPeer)
	b = appendString(b, m.author)
	if m.reactions == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(m.reactions)))
		for k, n := range m.reactions {
			b = appendString(b, k)
			b = binary.AppendVarint(b, n)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(m.media)))
	for _, r := range m.media {
		md := r.m
		b = appendString(b, md.Kind)
		b = appendString(b, md.MIME)
		b = binary.AppendVarint(b, md.Size)
		b = binary.AppendVarint(b, int64(md.Width))
		b = binary.AppendVarint(b, int64(md.Height))
		b = binary.AppendUvarint(b, math.Float64bits(md.DurationSec))
		b = appendString(b, md.FileName)
		b = appendString(b, md.SHA256)
		b = appendString(b, md.ObjectKey)
		b = appendString(b, md.Skipped)
		b = appendString(b, r.rel)
	}
	return b
}

// spoolReader reads a spool back. Errors are sticky: the first one is kept in err and
// every later read returns zero values.
type spoolReader struct {
	r   *bufio.Reader
	err error
}

func (s *spool) reader() *spoolReader {
	return &spoolReader{r: bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.size), 256<<10)}
}

func (r *spoolReader) fail(err error) {
	if r.err == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("%w: %w", ErrSpool, err)
	}
}

// kind reads the next record's kind; ok is false at the end of the spool.
func (r *spoolReader) kind() (k byte, ok bool) {
	if r.err != nil {
		return 0, false
	}
	k, err := r.r.ReadByte()
	if err == io.EOF {
		return 0, false
	}
	if err != nil {
		r.fail(err)
		return 0, false
	}
	return k, true
}

func (r *spoolReader) byte() byte {
	if r.err != nil {
		return 0
	}
	c, err := r.r.ReadByte()
	if err != nil {
		r.fail(err)
	}
	return c
}

func (r *spoolReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	n, err := binary.ReadVarint(r.r)
	if err != nil {
		r.fail(err)
	}
	return n
}

func (r *spoolReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(err)
	}
	return n
}

// count reads a length and checks it against what is left to read of a sane spool.
func (r *spoolReader) count() int {
	n := r.uvarint()
	if n > math.MaxInt32 {
		r.fail(fmt.Errorf("length %d out of range", n))
		return 0
	}
	return int(n)
}

func (r *spoolReader) string() string {
	n := r.count()
	if n == 0 || r.err != nil {
		return ""
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.fail(err)
		return ""
	}
	return string(b)
}

func (r *spoolReader) time() time.Time {
	if r.byte() == 0 {
		return time.Time{}
	}
	sec := r.varint()
	return time.Unix(sec, int64(r.uvarint())).UTC()
}

func (r *spoolReader) strings() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]string, 0, min(n, 1024))
	for range n {
		out = append(out, r.string())
	}
	return out
}

// chatStart reads the rest of a chat start record into a chatState.
func (r *spoolReader) chatStart() *chatState {
	c := &chatState{ord: r.count()}
	c.index = int(r.varint())
	c.path = r.string()
	return c
}

// message reads the rest of a message record; in is the chat it belongs to.
func (r *spoolReader) message(in *chatState) *message {
	m := &message{in: in}
	m.start = r.varint()
	m.index = r.count()
	m.id = r.varint()
	m.typ = r.string()
	m.date = r.time()
	m.editDate = r.varint()
	m.text = r.string()
	if n := r.count(); n > 0 {
		m.entities = make([]events.Entity, 0, min(n, 1024))
		for range n {
			m.entities = append(m.entities, events.Entity{
				Type: r.string(), Offset: int(r.varint()), Length: int(r.varint()), URL: r.string(), UserID: r.varint(),
			})
		}
	}
	m.links = r.strings()
	m.hashtags = r.strings()
	m.mentions = r.strings()
	if r.byte() == 1 {
		m.forward = &events.ForwardOrigin{
			ChannelID: events.ChannelID(r.varint()), MessageID: r.varint(), FromName: r.string(), Date: r.time(), Author: r.string(),
		}
	}
	m.fwdKey = r.string()
	m.replyTo = r.varint()
	m.replyPeer = r.string()
	m.author = r.string()
	if r.byte() == 1 {
		n := r.count()
		m.reactions = make(map[string]int64, min(n, 1024))
		for range n {
			k := r.string()
			m.reactions[k] = r.varint()
		}
	}
	if n := r.count(); n > 0 {
		m.media = make([]mediaRef, 0, min(n, 1024))
		for range n {
			var md events.Media
			md.Kind = r.string()
			md.MIME = r.string()
			md.Size = r.varint()
			md.Width = int(r.varint())
			md.Height = int(r.varint())
			md.DurationSec = math.Float64frombits(r.uvarint())
			md.FileName = r.string()
			md.SHA256 = r.string()
			md.ObjectKey = r.string()
			md.Skipped = r.string()
			m.media = append(m.media, mediaRef{m: md, rel: r.string()})
		}
	}
	return m
}
