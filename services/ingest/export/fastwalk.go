package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// fastWalk is walk for files that are well-formed and in the usual layout, several times
// faster: it scans the bytes itself instead of through a json.Decoder, and decodes each
// message's typed form without reflection. It checks the JSON as strictly as encoding/json
// does, but says nothing about what is wrong: on anything it does not accept (a syntax
// error, an unusual layout, an error of the visitor) it returns errFallback, and the
// caller walks the file again with walk, from the start and with a fresh visitor, which
// finds the problem and its exact position. For a file it accepts, it makes the same
// visitor calls as walk (the tests compare the two on every fixture and under fuzzing).
//
// The scanning and checking run in the calling goroutine; the typed decode and the visitor
// in another (the pipe below), so that reading an export uses two cores.
func fastWalk(r io.Reader, v visitor) error {
	fr := newFixReader(r)
	fr.noKeep = true
	p := newPipe(v)
	w := &fastWalker{src: fr, p: p, buf: make([]byte, 0, 256<<10)}
	err := w.file()
	if err == nil {
		err = w.p.flush()
	}
	return errors.Join(err, p.close())
}

// The pipe's events: the visitor's calls, in order.
const (
	evChatStart byte = iota + 1
	evHeader
	evMessage
	evChatEnd
)

// pipeEvent is one visitor call. Chat events carry a snapshot of the walker's chatState
// (the visitor gets its own copy, which the walker does not change under it); a message
// (of the chat started last) carries where its bytes are in the batch's buf.
type pipeEvent struct {
	kind   byte
	chat   *chatState
	index  int
	start  int64
	lo, hi int
	plain  bool
}

type pipeBatch struct {
	buf []byte
	evs []pipeEvent
}

// pipe hands visitor calls in batches to a goroutine that makes them.
type pipe struct {
	v       visitor
	cur     *pipeBatch
	full    chan *pipeBatch // to the visitor's goroutine
	free    chan *pipeBatch // back from it
	stopped chan struct{}   // closed when the visitor's goroutine ends
	err     error           // the visitor's first error; read after stopped is closed
	closed  bool
}

const pipeBatchEvents = 128

func newPipe(v visitor) *pipe {
	p := &pipe{v: v, full: make(chan *pipeBatch, 2), free: make(chan *pipeBatch, 4), stopped: make(chan struct{})}
	for range 3 {
		p.free <- &pipeBatch{buf: make([]byte, 0, 256<<10), evs: make([]pipeEvent, 0, pipeBatchEvents)}
	}
	p.cur = <-p.free
	go p.run()
	return p
}

// chat sends a chat event with a snapshot of c.
func (p *pipe) chat(kind byte, c *chatState) error {
	snap := *c
	p.cur.evs = append(p.cur.evs, pipeEvent{kind: kind, chat: &snap})
	return p.maybeFlush()
}

// message sends a message; raw is copied.
func (p *pipe) message(i int, start int64, raw []byte, plain bool) error {
	lo := len(p.cur.buf)
	p.cur.buf = append(p.cur.buf, raw...)
	p.cur.evs = append(p.cur.evs, pipeEvent{kind: evMessage, index: i, start: start, lo: lo, hi: len(p.cur.buf), plain: plain})
	return p.maybeFlush()
}

func (p *pipe) maybeFlush() error {
	if len(p.cur.evs) < pipeBatchEvents && len(p.cur.buf) < 256<<10 {
		return nil
	}
	return p.flush()
}

// flush sends the current batch; it fails once the visitor's goroutine has stopped.
func (p *pipe) flush() error {
	if len(p.cur.evs) == 0 {
		return nil
	}
	select {
	case p.full <- p.cur:
	case <-p.stopped:
		return p.stopErr()
	}
	select {
	case p.cur = <-p.free:
	case <-p.stopped:
		return p.stopErr()
	}
	return nil
}

func (p *pipe) stopErr() error {
	if p.err != nil {
		return p.err
	}
	return errFallback
}

// close ends the visitor's goroutine after the batches sent and returns its error.
func (p *pipe) close() error {
	if !p.closed {
		p.closed = true
		close(p.full)
	}
	<-p.stopped
	return p.err
}

// run makes the visitor calls. The visitor's chatStates are its own: a chat event's
// snapshot replaces the current one's fields.
func (p *pipe) run() {
	defer close(p.stopped)
	var cur *chatState
	var fast fastMessage
	for b := range p.full {
		for _, ev := range b.evs {
			var err error
			switch ev.kind {
			case evChatStart:
				cur = ev.chat
				err = p.v.chatStart(cur)
			case evHeader:
				if cur != nil && cur.ord == ev.chat.ord {
					cur.name, cur.typ, cur.id = ev.chat.name, ev.chat.typ, ev.chat.id
				}
			case evMessage:
				raw := json.RawMessage(b.buf[ev.lo:ev.hi])
				var f *fastMessage
				if ev.plain && fast.decode(raw) {
					f = &fast
				}
				err = p.v.message(cur, ev.index, ev.start, raw, f)
			case evChatEnd:
				*cur = *ev.chat
				err = p.v.chatEnd(cur)
				cur = nil
			}
			if err != nil {
				if errors.Is(err, ErrSpool) {
					p.err = err
				} else {
					p.err = errFallback
				}
				return
			}
		}
		b.buf, b.evs = b.buf[:0], b.evs[:0]
		p.free <- b
	}
}

// errFallback says fastWalk gave up: walk the file with walk.
var errFallback = errors.New("export: not for the fast reader")

type fastWalker struct {
	src  io.Reader
	buf  []byte
	pos  int   // next byte of buf to read
	base int64 // output offset of buf[0]
	eof  bool
	err  error // a read error, returned instead of errFallback
	ord  int
	p    *pipe // to the visitor
	keys keyScanner
}

// fill reads more input, keeping buf[keep:]; it returns false at the end of the input.
func (w *fastWalker) fill(keep int) bool {
	if w.eof {
		return false
	}
	n := copy(w.buf, w.buf[keep:])
	w.buf = w.buf[:n]
	w.base += int64(keep)
	w.pos -= keep
	if cap(w.buf)-n < 32<<10 {
		nb := make([]byte, n, 2*cap(w.buf))
		copy(nb, w.buf)
		w.buf = nb
	}
	// Read until a good part of the buffer is filled, so that a reader returning little
	// at a time does not make the kept bytes move for each of its reads.
	for len(w.buf)-n < 16<<10 {
		m, err := w.src.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+m]
		if err != nil {
			w.eof = true
			if err != io.EOF {
				w.err = err
			}
			break
		}
	}
	return len(w.buf) > n
}

// fail is errFallback, or the read error that ended the input.
func (w *fastWalker) fail() error {
	if w.err != nil {
		return fmt.Errorf("export: read: %w", w.err)
	}
	return errFallback
}

// peek skips whitespace and returns the next byte; ok is false at the end of the input.
func (w *fastWalker) peek() (byte, bool) {
	for {
		for w.pos < len(w.buf) {
			if c := w.buf[w.pos]; !isSpace(c) {
				return c, true
			}
			w.pos++
		}
		if !w.fill(w.pos) {
			return 0, false
		}
	}
}

// expect consumes c after whitespace.
func (w *fastWalker) expect(c byte) bool {
	if b, ok := w.peek(); !ok || b != c {
		return false
	}
	w.pos++
	return true
}

// value reads the JSON value after whitespace, which must be valid JSON, and returns its
// bytes (valid until the next read) and its output offset.
func (w *fastWalker) value() ([]byte, int64, bool) {
	if _, ok := w.peek(); !ok {
		return nil, 0, false
	}
	// Find the end: brackets and strings are followed, nothing else is checked yet. When
	// more input is read, the value's first bytes move to the start of buf.
	start, i, depth := w.pos, w.pos, 0
	more := func() bool {
		if !w.fill(start) {
			return false
		}
		i -= start
		start = 0
		return true
	}
scan:
	for {
		if i >= len(w.buf) {
			if !more() {
				return nil, 0, false // the input ends inside the value
			}
			continue
		}
		switch c := w.buf[i]; {
		case c == '"':
			i++
		str:
			for {
				if i >= len(w.buf) {
					if !more() {
						return nil, 0, false
					}
					continue
				}
				switch w.buf[i] {
				case '\\':
					i += 2
				case '"':
					break str
				default:
					i++
				}
			}
			i++
			if depth == 0 {
				break scan
			}
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				break scan // the enclosing container ends after a number or literal
			}
			depth--
			i++
			if depth == 0 {
				break scan
			}
		case depth == 0 && (c == ',' || c == ':' || isSpace(c)):
			break scan
		default:
			i++
		}
	}
	raw := w.buf[start:i]
	if len(raw) == 0 || !validJSON(raw) {
		return nil, 0, false
	}
	w.pos = i
	return raw, w.base + int64(start), true
}

// key reads an object key and its colon; more is false when the object ended instead.
// Only keys without escapes are read: others make the walk fall back.
func (w *fastWalker) key(first bool) (k string, more, ok bool) {
	c, ok := w.peek()
	if !ok {
		return "", false, false
	}
	if c == '}' {
		w.pos++
		return "", false, true
	}
	if !first {
		if c != ',' {
			return "", false, false
		}
		w.pos++
	}
	raw, _, ok := w.value()
	if !ok || raw[0] != '"' {
		return "", false, false
	}
	for _, b := range raw[1 : len(raw)-1] {
		if b == '\\' || b >= utf8.RuneSelf {
			return "", false, false
		}
	}
	if !w.expect(':') {
		return "", false, false
	}
	return string(raw[1 : len(raw)-1]), true, true
}

// element starts the next element of an array: more is false when the array ended.
func (w *fastWalker) element(first bool) (more, ok bool) {
	c, ok := w.peek()
	if !ok {
		return false, false
	}
	if c == ']' {
		w.pos++
		return false, true
	}
	if !first {
		if c != ',' {
			return false, false
		}
		w.pos++
	}
	return true, true
}

// skip reads a value that is not used.
func (w *fastWalker) skip() bool {
	_, _, ok := w.value()
	return ok
}

// offset is the output offset of the next byte after whitespace.
func (w *fastWalker) offset() int64 { return w.base + int64(w.pos) }

func (w *fastWalker) file() error {
	if !w.expect('{') {
		return w.fail()
	}
	single := &chatState{ord: -1, index: -1, start: w.offset() - 1}
	var chatsKey string
	account := false
	for first := true; ; first = false {
		k, more, ok := w.key(first)
		if !ok {
			return w.fail()
		}
		if !more {
			break
		}
		switch k {
		case "chats", "left_chats":
			if single.sawMessages {
				return w.fail()
			}
			if chatsKey == "" {
				chatsKey = k
			}
			if err := w.chatList(k); err != nil {
				return err
			}
		case "messages":
			if chatsKey != "" || single.sawMessages {
				return w.fail()
			}
			single.ord = w.ord
			w.ord++
			if err := w.p.chat(evChatStart, single); err != nil {
				return err
			}
			if err := w.messages(single); err != nil {
				return err
			}
		case "name", "type", "id":
			if !w.header(single, k) {
				return w.fail()
			}
		default:
			account = account || accountSections[k]
			if !w.skip() {
				return w.fail()
			}
		}
	}
	if _, ok := w.peek(); ok || w.err != nil {
		return w.fail() // data after the object
	}
	switch {
	case single.sawMessages:
		if err := w.p.chat(evChatEnd, single); err != nil {
			return err
		}
	case chatsKey == "" && !account:
		return w.fail()
	}
	return nil
}

func (w *fastWalker) chatList(key string) error {
	c, ok := w.peek()
	switch {
	case !ok:
		return w.fail()
	case c == '[':
		w.pos++
		return w.chatArray(key, key)
	case c != '{':
		return w.fail()
	}
	w.pos++
	sawList := false
	for first := true; ; first = false {
		k, more, ok := w.key(first)
		if !ok {
			return w.fail()
		}
		if !more {
			break
		}
		if k != "list" {
			if !w.skip() {
				return w.fail()
			}
			continue
		}
		sawList = true
		if !w.expect('[') {
			return w.fail()
		}
		if err := w.chatArray(key, key+".list"); err != nil {
			return err
		}
	}
	if !sawList {
		return w.fail()
	}
	return nil
}

// chatArray reads the chats of a list; the '[' has been read.
func (w *fastWalker) chatArray(list, path string) error {
	for i := 0; ; i++ {
		more, ok := w.element(i == 0)
		if !ok {
			return w.fail()
		}
		if !more {
			return nil
		}
		if !w.expect('{') {
			return w.fail()
		}
		start := w.offset() - 1
		c := &chatState{ord: w.ord, path: fmt.Sprintf("%s[%d]", path, i), list: list, index: i, start: start}
		w.ord++
		if err := w.p.chat(evChatStart, c); err != nil {
			return err
		}
		for first := true; ; first = false {
			k, more, ok := w.key(first)
			if !ok {
				return w.fail()
			}
			if !more {
				break
			}
			switch k {
			case "messages":
				if c.sawMessages {
					return w.fail()
				}
				if err := w.messages(c); err != nil {
					return err
				}
			case "name", "type", "id":
				if !w.header(c, k) {
					return w.fail()
				}
			default:
				if !w.skip() {
					return w.fail()
				}
			}
		}
		if !c.sawMessages {
			return w.fail()
		}
		if err := w.p.chat(evChatEnd, c); err != nil {
			return err
		}
	}
}

func (w *fastWalker) header(c *chatState, k string) bool {
	raw, off, ok := w.value()
	if !ok {
		return false
	}
	f := rawField{raw: json.RawMessage(string(raw)), off: off}
	switch k {
	case "name":
		c.name = f
	case "type":
		c.typ = f
	case "id":
		c.id = f
	}
	return w.p.chat(evHeader, c) == nil
}

// messages reads a chat's messages array, handing each message to the visitor.
func (w *fastWalker) messages(c *chatState) error {
	if !w.expect('[') {
		return w.fail()
	}
	c.sawMessages = true
	for i := 0; ; i++ {
		more, ok := w.element(i == 0)
		if !ok {
			return w.fail()
		}
		if !more {
			return nil
		}
		raw, start, ok := w.value()
		if !ok || raw[0] != '{' {
			return w.fail()
		}
		if err := w.p.message(i, start, raw, w.keys.plainJSON(raw)); err != nil {
			return err
		}
	}
}

// validJSON reports whether raw is exactly one JSON value, by encoding/json's grammar.
func validJSON(raw []byte) bool {
	i, ok := validValue(raw, 0, 0)
	return ok && skipSpace(raw, i) == len(raw)
}

// maxDepth is how deep the fast reader follows nesting; deeper values fall back.
const maxDepth = 1000

// validValue checks the value at raw[i] and returns the index after it.
func validValue(raw []byte, i, depth int) (int, bool) {
	i = skipSpace(raw, i)
	if i >= len(raw) {
		return i, false
	}
	switch c := raw[i]; {
	case c == '"':
		return validString(raw, i)
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, false
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipSpace(raw, i+1)
		if i < len(raw) && raw[i] == closing {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				i = skipSpace(raw, i)
				if i >= len(raw) || raw[i] != '"' {
					return i, false
				}
				if i, ok = validString(raw, i); !ok {
					return i, false
				}
				i = skipSpace(raw, i)
				if i >= len(raw) || raw[i] != ':' {
					return i, false
				}
				i++
			}
			if i, ok = validValue(raw, i, depth+1); !ok {
				return i, false
			}
			i = skipSpace(raw, i)
			if i >= len(raw) {
				return i, false
			}
			switch raw[i] {
			case ',':
				i++
			case closing:
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == 't':
		return literal(raw, i, "true")
	case c == 'f':
		return literal(raw, i, "false")
	case c == 'n':
		return literal(raw, i, "null")
	default:
		return validNumber(raw, i)
	}
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	return i
}

func literal(raw []byte, i int, lit string) (int, bool) {
	if len(raw)-i < len(lit) || string(raw[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// validString checks the string starting at raw[i] == '"'.
func validString(raw []byte, i int) (int, bool) {
	for i++; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(raw) {
				return i, false
			}
			switch raw[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(raw)-i < 5 {
					return i, false
				}
				for _, h := range raw[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at raw[i].
func validNumber(raw []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(raw) && '0' <= raw[j] && raw[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if i < len(raw) && raw[i] == '-' {
		i++
	}
	switch {
	case i >= len(raw):
		return i, false
	case raw[i] == '0':
		i++
	case '1' <= raw[i] && raw[i] <= '9':
		i, _ = digits(i)
	default:
		return i, false
	}
	var ok bool
	if i < len(raw) && raw[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}
