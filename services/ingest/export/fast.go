package export

import (
	"encoding/json"
	"strconv"

	"github.com/tgflow/tgflow/events"
)

// fastMessage is a message decoded in one typed pass, for speed: it admits only the JSON
// types Telegram Desktop writes, and parseFast declines anything unusual (a wrong type, a
// negative size, an empty date). A declined message is read again by parseMessage, which
// accepts every tolerated form and says exactly what is wrong with the rest; for a message
// parseFast accepts, both give the same result (the tests check this on every message).
//
// Pointers mark the fields whose absence means something different from an empty string.
type fastMessage struct {
	ID              int64           `json:"id"`
	Type            string          `json:"type"`
	Date            string          `json:"date"`
	DateUnix        *string         `json:"date_unixtime"`
	Edited          string          `json:"edited"`
	EditedUnix      *string         `json:"edited_unixtime"`
	Author          string          `json:"author"`
	ForwardedFrom   json.RawMessage `json:"forwarded_from"`
	ForwardedFromID *string         `json:"forwarded_from_id"`
	ReplyTo         int64           `json:"reply_to_message_id"`
	ReplyToPeer     json.RawMessage `json:"reply_to_peer_id"`
	Photo           *string         `json:"photo"`
	PhotoFileSize   int64           `json:"photo_file_size"`
	File            *string         `json:"file"`
	FileName        string          `json:"file_name"`
	FileSize        int64           `json:"file_size"`
	MediaType       string          `json:"media_type"`
	MimeType        string          `json:"mime_type"`
	Duration        int64           `json:"duration_seconds"`
	Width           int64           `json:"width"`
	Height          int64           `json:"height"`
	Text            json.RawMessage `json:"text"`
	TextEntities    []fastPart      `json:"text_entities"`
	Reactions       []fastReaction  `json:"reactions"`
}

type fastPart struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Href   string `json:"href"`
	UserID int64  `json:"user_id"`
}

type fastReaction struct {
	Type       string `json:"type"`
	Count      int64  `json:"count"`
	Emoji      string `json:"emoji"`
	DocumentID string `json:"document_id"`
}

// verifyFast, set by tests, checks every message parseFast accepts against parseMessage.
var verifyFast func(raw json.RawMessage, fast *message)

// reset prepares f for the next message. The parts slice is reused from message to
// message (zeroed: the decoder does not clear an element it reuses); an absent
// text_entities then looks like an empty one, which only matters when "text" has text:
// parseMessage reads those.
func (f *fastMessage) reset() {
	parts := f.TextEntities[:cap(f.TextEntities)]
	clear(parts)
	*f = fastMessage{TextEntities: parts[:0]}
}

// plainJSON reports whether a message is in the plain form parseFast can be trusted with:
// every key lowercase ASCII without escapes, no key twice in an object, and no null. The
// typed decode treats those cases differently from parseMessage (a null leaves a string
// unchanged; a repeated array reuses the elements of the first; keys match regardless of
// case), so such a message goes to parseMessage. Telegram Desktop writes the plain form
// but for rare nulls. raw is known to be valid JSON.
type keyScanner struct {
	keys  [][2]int // key spans of the open objects
	stack []int    // per open container: index of its first key in keys, -1 for arrays
}

func (s *keyScanner) plainJSON(raw []byte) bool {
	s.keys, s.stack = s.keys[:0], s.stack[:0]
	wantKey := false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			s.stack = append(s.stack, len(s.keys))
			wantKey = true
		case '[':
			s.stack = append(s.stack, -1)
			wantKey = false
		case '}', ']':
			top := s.stack[len(s.stack)-1]
			if top >= 0 {
				s.keys = s.keys[:top]
			}
			s.stack = s.stack[:len(s.stack)-1]
			wantKey = false
		case ',':
			wantKey = s.stack[len(s.stack)-1] >= 0
		case 'n': // outside a string, only null starts with n
			return false
		case '"':
			j := i + 1
			for raw[j] != '"' {
				if raw[j] == '\\' {
					if wantKey {
						return false
					}
					j++
				}
				j++
			}
			if wantKey {
				for _, c := range raw[i+1 : j] {
					if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
						return false
					}
				}
				key := raw[i+1 : j]
				for _, k := range s.keys[s.stack[len(s.stack)-1]:] {
					if string(raw[k[0]:k[1]]) == string(key) {
						return false
					}
				}
				s.keys = append(s.keys, [2]int{i + 1, j})
				wantKey = false
			}
			i = j
		}
	}
	return true
}

// readMessage parses one message: from f, the walker's typed decode of raw, when that
// succeeded (f is nil when it failed) and parseFast accepts it; else exactly from raw.
func readMessage(raw json.RawMessage, f *fastMessage, w *wireMessage) (*message, *fieldError) {
	if f != nil {
		if m, ok := parseFast(f); ok {
			if verifyFast != nil {
				verifyFast(raw, m)
			}
			return m, nil
		}
	}
	return parseMessage(raw, w)
}

func parseFast(f *fastMessage) (*message, bool) {
	if f.ID <= 0 {
		return nil, false
	}
	m := &message{id: f.ID, typ: f.Type}
	switch f.Type {
	case "", typeMessage:
		m.typ = typeMessage
	case typeService:
		m.skip = SkipService
		return m, true
	case typeUnsupported:
		m.skip = SkipUnsupported
		return m, true
	default:
		m.skip = SkipUnknownType
		return m, true
	}

	date, ok := fastUnix(f.DateUnix)
	if !ok {
		return nil, false
	}
	if date == 0 && f.Date != "" {
		if date, ok = parseLocal(f.Date); !ok {
			return nil, false
		}
	}
	if date == 0 {
		return nil, false
	}
	m.date = unixUTC(date)
	if m.editDate, ok = fastUnix(f.EditedUnix); !ok {
		return nil, false
	}
	if m.editDate == 0 && f.Edited != "" {
		if m.editDate, ok = parseLocal(f.Edited); !ok {
			return nil, false
		}
	}

	m.author = f.Author
	var id string
	if f.ForwardedFromID != nil {
		id = *f.ForwardedFromID
	}
	if m.setForward(f.ForwardedFrom, id, f.ForwardedFromID != nil) != nil {
		return nil, false
	}
	if f.ReplyTo < 0 {
		return nil, false
	}
	m.replyTo = f.ReplyTo
	var ferr *fieldError
	if m.replyPeer, ferr = replyPeer(f.ReplyToPeer); ferr != nil {
		return nil, false
	}

	if len(f.TextEntities) == 0 && !isNull(f.Text) && string(f.Text) != `""` {
		return nil, false
	}
	size, ents := 0, 0
	for _, p := range f.TextEntities {
		size += len(p.Text)
		if p.Type != "plain" {
			ents++
		}
	}
	tb := textBuilder{m: m}
	tb.b.Grow(size)
	if ents > 0 {
		m.entities = make([]events.Entity, 0, ents)
	}
	for _, p := range f.TextEntities {
		tb.add(p.Type, p.Text, p.Href, p.UserID)
	}
	tb.done()
	if len(m.entities) == 0 {
		m.entities = nil
	}

	if f.PhotoFileSize < 0 || f.FileSize < 0 || f.Duration < 0 || f.Width < 0 || f.Height < 0 {
		return nil, false
	}
	if f.Photo != nil {
		ref, ok := fileRefString(*f.Photo)
		if !ok {
			return nil, false
		}
		m.media = append(m.media, photoRef(ref, f.PhotoFileSize, f.Width, f.Height))
	}
	if f.File != nil {
		ref, ok := fileRefString(*f.File)
		if !ok {
			return nil, false
		}
		ff := fileFields{mediaType: f.MediaType, mime: f.MimeType, name: f.FileName,
			size: f.FileSize, duration: f.Duration, width: f.Width, height: f.Height}
		m.media = append(m.media, ff.ref(ref))
	}

	for _, r := range f.Reactions {
		// A null element decodes as an empty reaction; parseMessage reports it.
		if r.Type == "" || r.Count < 0 {
			return nil, false
		}
		m.addReaction(reactionKey(r.Type, r.Emoji, r.DocumentID), r.Count)
	}
	return m, true
}

// fastUnix reads a *_unixtime string; 0 when absent, ok false when not a positive number.
func fastUnix(s *string) (int64, bool) {
	if s == nil {
		return 0, true
	}
	n, err := strconv.ParseInt(*s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
