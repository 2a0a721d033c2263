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
func fastWalk(r io.Reader, v visitor) error {
	fr := newFixReader(r)
	fr.noKeep = true
	w := &fastWalker{src: fr, v: v, buf: make([]byte, 0, 256<<10)}
	return w.file()
}

// errFallback says fastWalk gave up: walk the file with walk.
var errFallback = errors.New("export: not for the fast reader")

type fastWalker struct {
	src  io.Reader
	v    visitor
	buf  []byte
	pos  int   // next byte of buf to read
	base int64 // output offset of buf[0]
	eof  bool
	err  error // a read error, returned instead of errFallback
	ord  int
	fast fastMessage
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
			if w.v.chatStart(single) != nil {
				return w.fail()
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
		if w.v.chatEnd(single) != nil {
			return w.fail()
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
		if w.v.chatStart(c) != nil {
			return w.fail()
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
		if !c.sawMessages || w.v.chatEnd(c) != nil {
			return w.fail()
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
	return true
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
		var f *fastMessage
		if w.keys.plainJSON(raw) && w.fast.decode(raw) {
			f = &w.fast
		}
		if err := w.v.message(c, i, start, raw, f); err != nil {
			if errors.Is(err, ErrSpool) {
				return err
			}
			return w.fail()
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
