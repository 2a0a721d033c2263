package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A walker streams through an export with a json.Decoder: objects and arrays down to the
// messages are read token by token, and each message is decoded on its own, so a file is
// never held in memory whole. Every problem becomes a *ParseError with its byte offset.
type walker struct {
	fr   *fixReader
	dec  *json.Decoder
	v    visitor
	ord  int
	fast fastMessage // reused for messages
	keys keyScanner
}

// visitor receives the chats and messages of an export in file order.
type visitor interface {
	chatStart(c *chatState) error
	// message gets the raw bytes of one message and their typed decode, or a nil
	// *fastMessage when the typed decode failed. Neither may be kept after it returns.
	message(c *chatState, index int, start int64, raw json.RawMessage, f *fastMessage) error
	chatEnd(c *chatState) error
}

// chatState is one chat as the walker reads it. Its header fields are kept raw with their
// offsets: they may come before or after the messages.
type chatState struct {
	ord         int    // position among all chats of the file
	path        string // "chats.list[2]", or "" for a one-chat export
	list        string // "chats", "left_chats", or ""
	index       int    // index in its list, -1 for a one-chat export
	start       int64  // output offset of the chat object
	name        rawField
	typ         rawField
	id          rawField
	sawMessages bool
}

type rawField struct {
	raw json.RawMessage
	off int64
}

func (c *chatState) msgPath(i int) string {
	if c.path == "" {
		return fmt.Sprintf("messages[%d]", i)
	}
	return fmt.Sprintf("%s.messages[%d]", c.path, i)
}

// posError is a problem a visitor found at a known output offset.
type posError struct {
	out       int64
	path      string
	chat, msg int
	reason    string
}

func (e *posError) Error() string { return e.reason }

// located turns a visitor's *posError into a *ParseError and passes other errors on.
func (w *walker) located(err error) error {
	if pe, ok := err.(*posError); ok {
		return w.errAt(pe.out, pe.path, pe.chat, pe.msg, "%s", pe.reason)
	}
	return err
}

// errStop unwinds the walk when the consumer of Facts stops early.
var errStop = errors.New("stop")

func walk(r io.Reader, v visitor) error {
	fr := newFixReader(r)
	dec := json.NewDecoder(fr)
	dec.UseNumber()
	w := &walker{fr: fr, dec: dec, v: v}
	return w.file()
}

func (w *walker) errAt(out int64, path string, chat, msg int, format string, args ...any) *ParseError {
	return &ParseError{Path: path, Chat: chat, Message: msg, Offset: w.fr.inputOffset(out), Reason: fmt.Sprintf(format, args...)}
}

// token reads the next token and returns the output offset where it starts.
func (w *walker) token(path string, chat, msg int) (int64, json.Token, error) {
	off0 := w.dec.InputOffset()
	w.fr.mark(off0)
	tok, err := w.dec.Token()
	if err != nil {
		return 0, nil, w.syntaxErr(off0, err, path, chat, msg)
	}
	return off0 + int64(skipSeparator(w.fr.from(off0))), tok, nil
}

// value decodes the next value raw and returns the output offset where it starts.
func (w *walker) value(dst *json.RawMessage, path string, chat, msg int) (int64, error) {
	off0 := w.dec.InputOffset()
	w.fr.mark(off0)
	if err := w.dec.Decode(dst); err != nil {
		return 0, w.syntaxErr(off0, err, path, chat, msg)
	}
	return w.dec.InputOffset() - int64(len(*dst)), nil
}

// key reads an object key, or reports that the object ended.
func (w *walker) key(path string, chat, msg int) (string, bool, error) {
	more := w.dec.More()
	start, tok, err := w.token(path, chat, msg)
	if err != nil {
		return "", false, err
	}
	if !more {
		if tok != json.Delim('}') {
			return "", false, w.errAt(start, path, chat, msg, "invalid JSON: %s where an object should end", tokenKind(tok))
		}
		return "", false, nil
	}
	k, ok := tok.(string)
	if !ok {
		return "", false, w.errAt(start, path, chat, msg, "invalid JSON: %s where an object key should be", tokenKind(tok))
	}
	return k, true, nil
}

// syntaxErr locates a decoder error exactly. The decoder's own offsets are exact for errors
// between values but not inside them, so the value that failed is scanned again on its own
// from the bytes the reader kept.
func (w *walker) syntaxErr(off0 int64, err error, path string, chat, msg int) error {
	data := w.fr.from(off0)
	k := skipSeparator(data)
	reason := err.Error()
	var pos int64 = -1
	if len(data) > k {
		var v json.RawMessage
		d := json.NewDecoder(bytes.NewReader(data[k:]))
		switch err2 := d.Decode(&v); {
		case err2 == nil:
		case errors.As(err2, new(*json.SyntaxError)):
			var se *json.SyntaxError
			errors.As(err2, &se)
			pos, reason = off0+int64(k)+se.Offset-1, se.Error()
		case errors.Is(err2, io.ErrUnexpectedEOF), errors.Is(err2, io.EOF):
			pos, reason = off0+int64(len(data)), "unexpected end of file"
		}
	}
	if pos < 0 {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			pos = se.Offset
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			pos, reason = off0+int64(len(data)), "unexpected end of file"
		default:
			return fmt.Errorf("export: read: %w", err)
		}
	}
	return w.errAt(pos, path, chat, msg, "invalid JSON: %s", reason)
}

// skipSeparator counts the whitespace, at most one ',' or ':', and whitespace again at the
// start of b: what the decoder skips before a token.
func skipSeparator(b []byte) int {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == ',' || b[i] == ':') {
		i++
		for i < len(b) && isSpace(b[i]) {
			i++
		}
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		if t == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// file reads the top-level object: either one chat (name, type, id, messages) or a whole
// account (chats.list, left_chats.list, and sections this package does not read).
func (w *walker) file() error {
	tok, err := w.dec.Token()
	switch {
	case err == io.EOF:
		return w.errAt(0, "", -1, -1, "the file is empty")
	case err != nil:
		return w.syntaxErr(0, err, "", -1, -1)
	}
	start := int64(skipSeparator(w.fr.from(0)))
	if tok != json.Delim('{') {
		return w.errAt(start, "", -1, -1, "the file holds %s, want a JSON object", tokenKind(tok))
	}
	single := &chatState{ord: -1, index: -1, start: start}
	var chatsKey string
	account := false // a section only whole-account exports have
	for {
		off := w.dec.InputOffset()
		k, more, err := w.key("", -1, -1)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		keyStart := off + int64(skipSeparator(w.fr.from(off)))
		switch k {
		case "chats", "left_chats":
			if single.sawMessages {
				return w.errAt(keyStart, "", -1, -1, "%s next to a top-level messages array: is this one chat or a whole account?", k)
			}
			if chatsKey == "" {
				chatsKey = k
			}
			if err := w.chatList(k); err != nil {
				return err
			}
		case "messages":
			if chatsKey != "" {
				return w.errAt(keyStart, "", -1, -1, "messages next to a top-level %s list: is this one chat or a whole account?", chatsKey)
			}
			if single.sawMessages {
				return w.errAt(keyStart, "", -1, -1, "a second messages array")
			}
			single.ord = w.ord
			w.ord++
			if err := w.v.chatStart(single); err != nil {
				return err
			}
			if err := w.messages(single); err != nil {
				return err
			}
		case "name", "type", "id":
			if err := w.header(single, k); err != nil {
				return err
			}
		default:
			account = account || accountSections[k]
			var skip json.RawMessage
			if _, err := w.value(&skip, "", -1, -1); err != nil {
				return err
			}
		}
	}
	off := w.dec.InputOffset()
	w.fr.mark(off)
	if _, err := w.dec.Token(); err != io.EOF {
		if err != nil {
			return w.syntaxErr(off, err, "", -1, -1)
		}
		return w.errAt(off+int64(skipSeparator(w.fr.from(off))), "", -1, -1, "data after the top-level object")
	}
	switch {
	case single.sawMessages:
		return w.located(w.v.chatEnd(single))
	case chatsKey == "" && !account:
		return w.errAt(start, "", -1, -1, "no messages array and no chats list: not a Telegram Desktop JSON export")
	}
	return nil
}

// accountSections are top-level keys of a whole-account export besides the chat lists; such
// an export made without chats is valid and has nothing to import.
var accountSections = map[string]bool{
	"about": true, "personal_information": true, "profile_pictures": true, "stories": true,
	"contacts": true, "frequent_contacts": true, "sessions": true, "web_sessions": true,
	"other_data": true,
}

// chatList reads "chats" or "left_chats": {"about": …, "list": [chat, …]} (a bare array is
// accepted too).
func (w *walker) chatList(key string) error {
	start, tok, err := w.token(key, -1, -1)
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		return w.chatArray(key, key)
	case json.Delim('{'):
	default:
		return w.errAt(start, key, -1, -1, "%s is %s, want an object with a list", key, tokenKind(tok))
	}
	sawList := false
	for {
		k, more, err := w.key(key, -1, -1)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if k != "list" {
			var skip json.RawMessage
			if _, err := w.value(&skip, key, -1, -1); err != nil {
				return err
			}
			continue
		}
		sawList = true
		lstart, tok, err := w.token(key+".list", -1, -1)
		if err != nil {
			return err
		}
		if tok != json.Delim('[') {
			return w.errAt(lstart, key+".list", -1, -1, "list is %s, want an array of chats", tokenKind(tok))
		}
		if err := w.chatArray(key, key+".list"); err != nil {
			return err
		}
	}
	if !sawList {
		return w.errAt(start, key, -1, -1, "%s has no list of chats", key)
	}
	return nil
}

// chatArray reads the chats of a list; the '[' has been read.
func (w *walker) chatArray(list, path string) error {
	for i := 0; ; i++ {
		if !w.dec.More() {
			_, _, err := w.token(path, -1, -1) // ']'
			return err
		}
		cpath := fmt.Sprintf("%s[%d]", path, i)
		start, tok, err := w.token(cpath, i, -1)
		if err != nil {
			return err
		}
		if tok != json.Delim('{') {
			return w.errAt(start, cpath, i, -1, "chat is %s, want an object", tokenKind(tok))
		}
		c := &chatState{ord: w.ord, path: cpath, list: list, index: i, start: start}
		w.ord++
		if err := w.v.chatStart(c); err != nil {
			return err
		}
		for {
			k, more, err := w.key(cpath, i, -1)
			if err != nil {
				return err
			}
			if !more {
				break
			}
			switch k {
			case "messages":
				if c.sawMessages {
					return w.errAt(w.dec.InputOffset()+int64(skipSeparator(w.fr.from(w.dec.InputOffset()))), cpath, i, -1, "a second messages array")
				}
				if err := w.messages(c); err != nil {
					return err
				}
			case "name", "type", "id":
				if err := w.header(c, k); err != nil {
					return err
				}
			default:
				var skip json.RawMessage
				if _, err := w.value(&skip, cpath, i, -1); err != nil {
					return err
				}
			}
		}
		if !c.sawMessages {
			return w.errAt(c.start, cpath, i, -1, "chat has no messages array")
		}
		if err := w.v.chatEnd(c); err != nil {
			return w.located(err)
		}
	}
}

func (w *walker) header(c *chatState, k string) error {
	var raw json.RawMessage
	off, err := w.value(&raw, c.path, c.index, -1)
	if err != nil {
		return err
	}
	f := rawField{raw: raw, off: off}
	switch k {
	case "name":
		c.name = f
	case "type":
		c.typ = f
	case "id":
		c.id = f
	}
	return nil
}

// messages reads a chat's messages array, handing each message to the visitor.
func (w *walker) messages(c *chatState) error {
	path := "messages"
	if c.path != "" {
		path = c.path + ".messages"
	}
	start, tok, err := w.token(path, c.index, -1)
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		return w.errAt(start, path, c.index, -1, "messages is %s, want an array", tokenKind(tok))
	}
	c.sawMessages = true
	for i := 0; ; i++ {
		if !w.dec.More() {
			_, _, err := w.token(path, c.index, -1) // ']'
			return err
		}
		// The message is decoded straight into its typed form; its raw bytes are the ones
		// the reader kept, for the exact reader and for error positions.
		off0 := w.dec.InputOffset()
		w.fr.mark(off0)
		w.fast.reset()
		err := w.dec.Decode(&w.fast)
		var typeErr *json.UnmarshalTypeError
		if err != nil && !errors.As(err, &typeErr) {
			return w.syntaxErr(off0, err, c.msgPath(i), c.index, i)
		}
		data := w.fr.from(off0)
		k := skipSeparator(data)
		raw := json.RawMessage(data[k : w.dec.InputOffset()-off0])
		mstart := off0 + int64(k)
		if raw[0] != '{' {
			return w.errAt(mstart, c.msgPath(i), c.index, i, "message is %s, want an object", kind(raw))
		}
		f := &w.fast
		if err != nil || !w.keys.plainJSON(raw) {
			f = nil
		}
		if err := w.v.message(c, i, mstart, raw, f); err != nil {
			if fe, ok := err.(*fieldError); ok {
				return w.errAt(fieldOffset(raw, mstart, fe.at), c.msgPath(i), c.index, i, "%s", fe.reason)
			}
			return w.located(err)
		}
	}
}

// fieldOffset finds the output offset of the value at path inside a message (its raw
// bytes start at output offset start); the message itself when path is empty or not found.
func fieldOffset(raw json.RawMessage, start int64, path []any) int64 {
	off := start
	cur := raw
	for _, p := range path {
		d := json.NewDecoder(bytes.NewReader(cur))
		found := false
		if _, err := d.Token(); err != nil {
			return off
		}
		switch p := p.(type) {
		case string:
			for d.More() {
				tok, err := d.Token()
				if err != nil {
					return off
				}
				var v json.RawMessage
				if err := d.Decode(&v); err != nil {
					return off
				}
				if k, _ := tok.(string); strings.EqualFold(k, p) {
					// Like encoding/json: keys match regardless of case, the last one wins.
					off2 := off + d.InputOffset() - int64(len(v))
					found = true
					cur, start = v, off2
				}
			}
		case int:
			for i := 0; d.More(); i++ {
				var v json.RawMessage
				if err := d.Decode(&v); err != nil {
					return off
				}
				if i == p {
					cur, start, found = v, off+d.InputOffset()-int64(len(v)), true
					break
				}
			}
		}
		if !found {
			return off
		}
		off = start
	}
	return off
}
