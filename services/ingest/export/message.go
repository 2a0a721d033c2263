package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
)

// wireMessage is one element of a chat's "messages" array. Every field is kept raw so that
// a value of the wrong type is reported by name and position instead of failing the decode.
// A JSON null counts as absent, except for forwarded_from (see parseForward).
type wireMessage struct {
	ID              json.RawMessage `json:"id"`
	Type            json.RawMessage `json:"type"`
	Date            json.RawMessage `json:"date"`
	DateUnix        json.RawMessage `json:"date_unixtime"`
	Edited          json.RawMessage `json:"edited"`
	EditedUnix      json.RawMessage `json:"edited_unixtime"`
	Author          json.RawMessage `json:"author"`
	ForwardedFrom   json.RawMessage `json:"forwarded_from"`
	ForwardedFromID json.RawMessage `json:"forwarded_from_id"`
	ReplyTo         json.RawMessage `json:"reply_to_message_id"`
	ReplyToPeer     json.RawMessage `json:"reply_to_peer_id"`
	Photo           json.RawMessage `json:"photo"`
	PhotoFileSize   json.RawMessage `json:"photo_file_size"`
	File            json.RawMessage `json:"file"`
	FileName        json.RawMessage `json:"file_name"`
	FileSize        json.RawMessage `json:"file_size"`
	MediaType       json.RawMessage `json:"media_type"`
	MimeType        json.RawMessage `json:"mime_type"`
	Duration        json.RawMessage `json:"duration_seconds"`
	Width           json.RawMessage `json:"width"`
	Height          json.RawMessage `json:"height"`
	Text            json.RawMessage `json:"text"`
	TextEntities    json.RawMessage `json:"text_entities"`
	Reactions       json.RawMessage `json:"reactions"`
}

// wirePart is an entity object of "text" or "text_entities".
type wirePart struct {
	Type       json.RawMessage `json:"type"`
	Text       json.RawMessage `json:"text"`
	Href       json.RawMessage `json:"href"`
	UserID     json.RawMessage `json:"user_id"`
	DocumentID json.RawMessage `json:"document_id"`
}

type wireReaction struct {
	Type       json.RawMessage `json:"type"`
	Count      json.RawMessage `json:"count"`
	Emoji      json.RawMessage `json:"emoji"`
	DocumentID json.RawMessage `json:"document_id"`
}

// Message types in exports.
const (
	typeMessage     = "message"
	typeService     = "service"
	typeUnsupported = "unsupported"
)

// Reasons a message of an imported channel is not a post.
const (
	SkipService     = "service message"
	SkipUnsupported = "unsupported message"
	SkipUnknownType = "unknown message type"
)

// Reasons a media attachment has no bytes in the media store (events.Media.Skipped).
const (
	// SkipNotIncluded: the export was made without this kind of file.
	SkipNotIncluded = "not included in export"
	// SkipExportSize: the file was over the size limit of the export settings.
	SkipExportSize = "over the export size limit"
	// SkipUnavailable: Telegram Desktop could not download the file.
	SkipUnavailable = "unavailable in export"
	// SkipMissing: the export names a file that is not in its folder.
	SkipMissing = "file missing from export"
	// SkipUnreadable: the file is there but cannot be read (permissions, a link that leads
	// out of the export folder).
	SkipUnreadable = "unreadable in export folder"
	// SkipTooLarge: the file is over the media store's size cap.
	SkipTooLarge = "too large"
	// SkipNoStore: Facts was called without a media store.
	SkipNoStore = "no media store"
)

// message is a parsed export message.
type message struct {
	id        int64
	typ       string
	skip      string // why it is not a post; "" for a post
	date      time.Time
	editDate  int64
	text      string
	entities  []events.Entity
	links     []string
	hashtags  []string
	mentions  []string
	forward   *events.ForwardOrigin
	fwdKey    string // forward origin as written, for album grouping
	replyTo   int64
	replyPeer string
	author    string
	reactions map[string]int64
	media     []mediaRef

	// where the message is, for errors found after it was parsed
	start int64
	in    *chatState
	index int
}

func (m *message) errorf(format string, args ...any) *posError {
	return &posError{out: m.start, path: m.in.msgPath(m.index), chat: m.in.index, msg: m.index, reason: fmt.Sprintf(format, args...)}
}

// mediaRef is one attachment and where its bytes are in the export ("" when they are not).
type mediaRef struct {
	m   events.Media
	rel string
}

func unixUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// quote shows a raw JSON value in an error, shortened.
func quote(raw json.RawMessage) string {
	const max = 40
	s := string(raw)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

func kind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func str(raw json.RawMessage, at ...any) (string, *fieldError) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", fieldErr(at, "%s %s is %s, want a string", fieldPath(at), quote(raw), kind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(at, "%s: %v", fieldPath(at), err)
	}
	return s, nil
}

// integer reads a JSON integer (not a string, not a fraction).
func integer(raw json.RawMessage, at ...any) (int64, *fieldError) {
	if isNull(raw) {
		return 0, nil
	}
	if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' {
		return 0, fieldErr(at, "%s %s is %s, want an integer", fieldPath(at), quote(raw), kind(raw))
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fieldErr(at, "%s %s is not an integer", fieldPath(at), quote(raw))
	}
	return n, nil
}

func nonNegative(raw json.RawMessage, at ...any) (int64, *fieldError) {
	n, err := integer(raw, at...)
	if err == nil && n < 0 {
		err = fieldErr(at, "%s %s is negative", fieldPath(at), quote(raw))
	}
	return n, err
}

// unixTime reads a "*_unixtime" field: a string of decimal seconds as Telegram Desktop
// writes it, or a plain number.
func unixTime(raw json.RawMessage, at ...any) (int64, bool, *fieldError) {
	if isNull(raw) {
		return 0, false, nil
	}
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, fieldErr(at, "%s: %v", fieldPath(at), err)
		}
	case '{', '[', 't', 'f':
		return 0, false, fieldErr(at, "%s %s is %s, want a string of Unix seconds", fieldPath(at), quote(raw), kind(raw))
	default:
		s = string(raw)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fieldErr(at, "%s %s is not a number", fieldPath(at), quote(raw))
	}
	if n <= 0 {
		return 0, false, fieldErr(at, "%s %s is not a positive time", fieldPath(at), quote(raw))
	}
	return n, true, nil
}

// parseLocal reads an ISO date without zone as UTC; ok is false when s is not one.
func parseLocal(s string) (int64, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), t.Unix() > 0
		}
	}
	return 0, false
}

// localTime reads the ISO "date"/"edited" fields of exports older than the *_unixtime
// fields. They carry no zone (Telegram Desktop wrote the exporting machine's local time);
// they are read as UTC.
func localTime(raw json.RawMessage, at ...any) (int64, bool, *fieldError) {
	s, ferr := str(raw, at...)
	if ferr != nil || s == "" {
		return 0, false, ferr
	}
	if n, ok := parseLocal(s); ok {
		return n, true, nil
	}
	return 0, false, fieldErr(at, "%s %s is not a date", fieldPath(at), quote(raw))
}

// parseMessage reads one message. A message that is not a post (service, unsupported) is
// returned with skip set after only its id and type are checked.
func parseMessage(raw json.RawMessage, w *wireMessage) (*message, *fieldError) {
	*w = wireMessage{}
	if err := json.Unmarshal(raw, w); err != nil {
		// The walker has checked the syntax; anything else is a bug worth seeing.
		return nil, fieldErr(nil, "%v", err)
	}
	m := &message{}
	var ferr *fieldError
	if isNull(w.ID) {
		return nil, fieldErr(nil, "id is missing")
	}
	if m.id, ferr = integer(w.ID, "id"); ferr != nil {
		return nil, ferr
	}
	if m.id <= 0 {
		return nil, fieldErr([]any{"id"}, "id %s is not a positive integer", quote(w.ID))
	}
	if m.typ, ferr = str(w.Type, "type"); ferr != nil {
		return nil, ferr
	}
	switch m.typ {
	case "", typeMessage:
		m.typ = typeMessage
	case typeService:
		m.skip = SkipService
		return m, nil
	case typeUnsupported:
		m.skip = SkipUnsupported
		return m, nil
	default:
		m.skip = SkipUnknownType
		return m, nil
	}

	date, ok, ferr := unixTime(w.DateUnix, "date_unixtime")
	if ferr != nil {
		return nil, ferr
	}
	if !ok {
		if date, ok, ferr = localTime(w.Date, "date"); ferr != nil {
			return nil, ferr
		}
	}
	if !ok {
		return nil, fieldErr(nil, "date_unixtime and date are missing")
	}
	m.date = unixUTC(date)
	if m.editDate, ok, ferr = unixTime(w.EditedUnix, "edited_unixtime"); ferr != nil {
		return nil, ferr
	}
	if !ok {
		if m.editDate, _, ferr = localTime(w.Edited, "edited"); ferr != nil {
			return nil, ferr
		}
	}

	if m.author, ferr = str(w.Author, "author"); ferr != nil {
		return nil, ferr
	}
	if ferr = m.parseForward(w); ferr != nil {
		return nil, ferr
	}
	if m.replyTo, ferr = integer(w.ReplyTo, "reply_to_message_id"); ferr != nil {
		return nil, ferr
	}
	if m.replyTo < 0 {
		return nil, fieldErr([]any{"reply_to_message_id"}, "reply_to_message_id %s is negative", quote(w.ReplyTo))
	}
	if m.replyPeer, ferr = replyPeer(w.ReplyToPeer); ferr != nil {
		return nil, ferr
	}

	// text_entities is the newer, regular form (every part an object); prefer it.
	textField, textRaw := "text", w.Text
	if !isNull(w.TextEntities) {
		textField, textRaw = "text_entities", w.TextEntities
	}
	if ferr = m.parseText(textRaw, textField); ferr != nil {
		return nil, ferr
	}
	if ferr = m.parseMedia(w); ferr != nil {
		return nil, ferr
	}
	if ferr = m.parseReactions(w.Reactions); ferr != nil {
		return nil, ferr
	}
	return m, nil
}

// parseForward reads forwarded_from. Exports give the origin's name only; a present null
// (an origin whose name is hidden or deleted) still marks the post as forwarded.
func (m *message) parseForward(w *wireMessage) *fieldError {
	idStr, ferr := str(w.ForwardedFromID, "forwarded_from_id")
	if ferr != nil {
		return ferr
	}
	return m.setForward(w.ForwardedFrom, idStr, !isNull(w.ForwardedFromID))
}

func (m *message) setForward(from json.RawMessage, id string, hasID bool) *fieldError {
	if len(from) == 0 && !hasID {
		return nil
	}
	name, ferr := str(from, "forwarded_from")
	if ferr != nil {
		return ferr
	}
	m.forward = &events.ForwardOrigin{FromName: name}
	m.fwdKey = "name:" + name + "\x00" + id
	if rest, ok := strings.CutPrefix(id, "channel"); ok {
		if cid, err := events.ParseChannelID(rest); err == nil {
			m.forward.ChannelID = cid
		}
	}
	return nil
}

// replyPeer reads reply_to_peer_id: "channel123", or a number.
func replyPeer(raw json.RawMessage) (string, *fieldError) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] == '"' {
		return str(raw, "reply_to_peer_id")
	}
	n, ferr := integer(raw, "reply_to_peer_id")
	return strconv.FormatInt(n, 10), ferr
}

// Entity types of events.Entity, named as in the Telegram Bot API. Export part types map to
// them; parts of an unknown type keep their export name.
var entityTypes = map[string]string{
	"mention":       "mention",
	"hashtag":       "hashtag",
	"cashtag":       "cashtag",
	"bot_command":   "bot_command",
	"link":          "url",
	"email":         "email",
	"phone":         "phone_number",
	"bold":          "bold",
	"italic":        "italic",
	"underline":     "underline",
	"strikethrough": "strikethrough",
	"spoiler":       "spoiler",
	"code":          "code",
	"pre":           "pre",
	"text_link":     "text_link",
	"mention_name":  "text_mention",
	"custom_emoji":  "custom_emoji",
	"blockquote":    "blockquote",
	"bank_card":     "bank_card",
}

// parseText reads "text" (a string, or an array of strings and entity objects) or
// "text_entities" (an array of entity objects, plain text as type "plain"), concatenating
// the parts and placing each entity at its code point offset.
func (m *message) parseText(raw json.RawMessage, field string) *fieldError {
	if isNull(raw) {
		return nil
	}
	switch raw[0] {
	case '"':
		s, ferr := str(raw, field)
		m.text = s
		return ferr
	case '[':
	default:
		return fieldErr([]any{field}, "%s %s is %s, want a string or an array", field, quote(raw), kind(raw))
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return fieldErr([]any{field}, "%s: %v", field, err)
	}
	tb := textBuilder{m: m}
	var p wirePart
	for i, part := range parts {
		if isNull(part) {
			continue
		}
		if part[0] == '"' {
			s, ferr := str(part, field, i)
			if ferr != nil {
				return ferr
			}
			tb.add("plain", s, "", 0)
			continue
		}
		if part[0] != '{' {
			return fieldErr([]any{field, i}, "%s %s is %s, want a string or an entity object", fieldPath([]any{field, i}), quote(part), kind(part))
		}
		p = wirePart{}
		if err := json.Unmarshal(part, &p); err != nil {
			return fieldErr([]any{field, i}, "%s: %v", fieldPath([]any{field, i}), err)
		}
		typ, ferr := str(p.Type, field, i, "type")
		if ferr != nil {
			return ferr
		}
		text, ferr := str(p.Text, field, i, "text")
		if ferr != nil {
			return ferr
		}
		var href string
		var userID int64
		switch typ {
		case "text_link":
			if href, ferr = str(p.Href, field, i, "href"); ferr != nil {
				return ferr
			}
		case "mention_name":
			if !isNull(p.UserID) && p.UserID[0] == '"' {
				s, ferr := str(p.UserID, field, i, "user_id")
				if ferr != nil {
					return ferr
				}
				n, err := strconv.ParseInt(strings.TrimPrefix(s, "user"), 10, 64)
				if err != nil {
					return fieldErr([]any{field, i, "user_id"}, "%s %q is not a user id", fieldPath([]any{field, i, "user_id"}), s)
				}
				userID = n
			} else if userID, ferr = integer(p.UserID, field, i, "user_id"); ferr != nil {
				return ferr
			}
		}
		tb.add(typ, text, href, userID)
	}
	tb.done()
	return nil
}

// textBuilder concatenates text parts, placing each entity at its code point offset and
// collecting links, hashtags and mentions.
type textBuilder struct {
	m      *message
	b      strings.Builder
	offset int
}

func (tb *textBuilder) add(typ, text, href string, userID int64) {
	n := utf8.RuneCountInString(text)
	tb.b.WriteString(text)
	start := tb.offset
	tb.offset += n
	if typ == "" || typ == "plain" || typ == "unknown" || n == 0 {
		return
	}
	m := tb.m
	e := events.Entity{Type: typ, Offset: start, Length: n}
	if t, ok := entityTypes[typ]; ok {
		e.Type = t
	}
	switch typ {
	case "link":
		e.URL = events.NormalizeLink(text)
		m.addLink(e.URL)
	case "text_link":
		e.URL = events.NormalizeLink(href)
		m.addLink(e.URL)
	case "mention_name":
		e.UserID = userID
	case "hashtag":
		m.hashtags = events.AppendUnique(m.hashtags, strings.TrimPrefix(strings.TrimSpace(text), "#"))
	case "mention":
		m.mentions = events.AppendUnique(m.mentions, strings.TrimPrefix(strings.TrimSpace(text), "@"))
	}
	m.entities = append(m.entities, e)
}

func (tb *textBuilder) done() { tb.m.text = tb.b.String() }

// addLink keeps web links only: the enricher fetches them.
func (m *message) addLink(u string) {
	if events.IsWebLink(u) {
		m.links = events.AppendUnique(m.links, u)
	}
}

// Media kinds by the export's media_type.
var mediaKinds = map[string]string{
	"":              events.MediaDocument,
	"video_file":    events.MediaVideo,
	"video_message": events.MediaVideo,
	"animation":     events.MediaAnimation,
	"voice_message": events.MediaVoice,
	"audio_file":    events.MediaAudio,
	"sticker":       events.MediaSticker,
}

// photoMIME guesses a photo's type from its extension: exports give no mime_type for photos.
// A fixed table, not mime.TypeByExtension, so the result does not depend on the machine.
var photoMIME = map[string]string{
	".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
	".webp": "image/webp", ".gif": "image/gif",
}

func (m *message) parseMedia(w *wireMessage) *fieldError {
	if !isNull(w.Photo) {
		ref, ferr := fileRef(w.Photo, "photo")
		if ferr != nil {
			return ferr
		}
		size, ferr := nonNegative(w.PhotoFileSize, "photo_file_size")
		if ferr != nil {
			return ferr
		}
		wd, ht, ferr := dimensions(w)
		if ferr != nil {
			return ferr
		}
		m.media = append(m.media, photoRef(ref, size, wd, ht))
	}
	if !isNull(w.File) {
		ref, ferr := fileRef(w.File, "file")
		if ferr != nil {
			return ferr
		}
		var f fileFields
		if f.mediaType, ferr = str(w.MediaType, "media_type"); ferr != nil {
			return ferr
		}
		if f.mime, ferr = str(w.MimeType, "mime_type"); ferr != nil {
			return ferr
		}
		if f.name, ferr = str(w.FileName, "file_name"); ferr != nil {
			return ferr
		}
		if f.size, ferr = nonNegative(w.FileSize, "file_size"); ferr != nil {
			return ferr
		}
		if f.duration, ferr = nonNegative(w.Duration, "duration_seconds"); ferr != nil {
			return ferr
		}
		if f.width, f.height, ferr = dimensions(w); ferr != nil {
			return ferr
		}
		m.media = append(m.media, f.ref(ref))
	}
	return nil
}

func dimensions(w *wireMessage) (int64, int64, *fieldError) {
	wd, ferr := nonNegative(w.Width, "width")
	if ferr != nil {
		return 0, 0, ferr
	}
	ht, ferr := nonNegative(w.Height, "height")
	return wd, ht, ferr
}

func photoRef(ref mediaRef, size, width, height int64) mediaRef {
	ref.m.Kind = events.MediaPhoto
	if ref.rel != "" {
		ref.m.MIME = photoMIME[strings.ToLower(path.Ext(ref.rel))]
		ref.m.FileName = path.Base(ref.rel)
	}
	ref.m.Size, ref.m.Width, ref.m.Height = size, int(width), int(height)
	return ref
}

// fileFields are the fields of a "file" attachment.
type fileFields struct {
	mediaType, mime, name         string
	size, duration, width, height int64
}

func (f fileFields) ref(ref mediaRef) mediaRef {
	k, ok := mediaKinds[f.mediaType]
	if !ok {
		k = events.MediaDocument
	}
	ref.m.Kind, ref.m.MIME, ref.m.FileName = k, f.mime, f.name
	if ref.m.FileName == "" && ref.rel != "" {
		ref.m.FileName = path.Base(ref.rel)
	}
	ref.m.Size, ref.m.DurationSec = f.size, float64(f.duration)
	ref.m.Width, ref.m.Height = int(f.width), int(f.height)
	return ref
}

// fileRef reads a "photo" or "file" value: a path relative to the export folder, or one of
// Telegram Desktop's parenthesised notes for a file it did not save.
func fileRef(raw json.RawMessage, field string) (mediaRef, *fieldError) {
	s, ferr := str(raw, field)
	if ferr != nil {
		return mediaRef{}, ferr
	}
	ref, ok := fileRefString(s)
	if !ok {
		return mediaRef{}, fieldErr([]any{field}, "%s %s is not a path inside the export folder", field, quote(raw))
	}
	return ref, nil
}

func fileRefString(s string) (mediaRef, bool) {
	if reason, ok := placeholder(s); ok {
		return mediaRef{m: events.Media{Skipped: reason}}, true
	}
	rel := strings.TrimPrefix(s, "./")
	if rel == "" || rel == "." || !fs.ValidPath(rel) {
		return mediaRef{}, false
	}
	return mediaRef{rel: rel}, true
}

// placeholder recognises "(File not included. Change data exporting settings to
// download.)", "(File exceeds maximum size. …)" and "(File unavailable, please try again
// later)".
func placeholder(s string) (string, bool) {
	if !strings.HasSuffix(s, ")") || !(strings.HasPrefix(s, "(") || strings.Contains(s, " (File ")) {
		return "", false
	}
	switch {
	case strings.Contains(s, "exceeds maximum size"):
		return SkipExportSize, true
	case strings.Contains(s, "unavailable"):
		return SkipUnavailable, true
	case strings.Contains(s, "not included"), strings.Contains(s, "exporting settings"):
		return SkipNotIncluded, true
	}
	return "", false
}

// parseReactions reads [{"type":"emoji","count":3,"emoji":"👍"}, …]. Keys of
// events.Post.Reactions: the emoji itself, "custom_emoji:<document_id>", or the type name
// for other kinds ("paid").
func (m *message) parseReactions(raw json.RawMessage) *fieldError {
	if isNull(raw) {
		return nil
	}
	if raw[0] != '[' {
		return fieldErr([]any{"reactions"}, "reactions %s is %s, want an array", quote(raw), kind(raw))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fieldErr([]any{"reactions"}, "reactions: %v", err)
	}
	for i, item := range list {
		if isNull(item) || item[0] != '{' {
			return fieldErr([]any{"reactions", i}, "reactions[%d] is not an object", i)
		}
		var r wireReaction
		if err := json.Unmarshal(item, &r); err != nil {
			return fieldErr([]any{"reactions", i}, "reactions[%d]: %v", i, err)
		}
		typ, ferr := str(r.Type, "reactions", i, "type")
		if ferr != nil {
			return ferr
		}
		count, ferr := nonNegative(r.Count, "reactions", i, "count")
		if ferr != nil {
			return ferr
		}
		var emoji, doc string
		switch typ {
		case "emoji":
			emoji, ferr = str(r.Emoji, "reactions", i, "emoji")
		case "custom_emoji":
			if !isNull(r.DocumentID) && r.DocumentID[0] != '"' {
				doc = string(bytes.TrimSpace(r.DocumentID))
				_, ferr = integer(r.DocumentID, "reactions", i, "document_id")
			} else {
				doc, ferr = str(r.DocumentID, "reactions", i, "document_id")
			}
		}
		key := reactionKey(typ, emoji, doc)
		if ferr != nil {
			return ferr
		}
		m.addReaction(key, count)
	}
	return nil
}

func reactionKey(typ, emoji, doc string) string {
	switch typ {
	case "emoji":
		return emoji
	case "custom_emoji":
		return "custom_emoji:" + doc
	}
	return typ
}

func (m *message) addReaction(key string, count int64) {
	if key == "" || count == 0 {
		return
	}
	if m.reactions == nil {
		m.reactions = map[string]int64{}
	}
	m.reactions[key] += count
}

// post builds the event payload of a message of channel ch.
func (m *message) post(ch events.ChannelID) events.Post {
	p := events.Post{
		PostRef:         events.PostRef{ChannelID: ch, MessageID: m.id},
		Date:            m.date,
		EditDate:        m.editDate,
		Text:            m.text,
		Entities:        m.entities,
		Links:           m.links,
		Hashtags:        m.hashtags,
		Mentions:        m.mentions,
		Reactions:       m.reactions,
		AuthorSignature: m.author,
		Origin:          Origin,
	}
	if m.forward != nil {
		f := *m.forward
		p.Forward = &f
	}
	// A reply to a message of another chat names a message id of that chat; the post's
	// ReplyTo has no chat, so such a reply is left out rather than misread.
	if m.replyTo > 0 && (m.replyPeer == "" || samePeer(m.replyPeer, ch)) {
		p.ReplyTo = &events.ReplyTo{MessageID: m.replyTo}
	}
	for _, r := range m.media {
		p.Media = append(p.Media, r.m)
	}
	return p
}

// samePeer reports whether an export peer id ("channel123", "-100123", "123") is channel ch.
func samePeer(peer string, ch events.ChannelID) bool {
	id, err := events.ParseChannelID(strings.TrimPrefix(peer, "channel"))
	return err == nil && id == ch
}
