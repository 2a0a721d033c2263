package telegram

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/gotd/td/tg"

	"github.com/tgflow/tgflow/events"
)

// Origin is the Post.Origin of posts read from Telegram.
const Origin = "telegram"

// Message kinds.
const (
	KindPost    = "post"
	KindService = "service"
	KindEmpty   = "empty"
)

// Message is one message of a channel as ingest sees it.
type Message struct {
	ID int64
	// Kind is KindPost, KindService (a join, a pin, a title change: not a post, skipped) or
	// KindEmpty (deleted or never existed).
	Kind string
	// Date is the message date (zero for an empty message).
	Date time.Time
	// Post is set for KindPost. Its Media carry kind, size and dimensions; StoreMedia adds
	// the object key or the reason the bytes were skipped.
	Post *events.Post
	// Unsupported names media that is not a file (a poll, a location, a game…), which
	// the post records as skipped.
	Unsupported string

	media tg.MessageMediaClass
}

// GroupedID is the album id of a post, or 0.
func (m *Message) GroupedID() int64 {
	if m.Post == nil {
		return 0
	}
	return m.Post.GroupedID
}

// MapMessage maps a Telegram message of channel ch.
func MapMessage(ch Channel, msg tg.MessageClass) Message {
	switch m := msg.(type) {
	case *tg.Message:
		p, unsupported := mapPost(ch, m)
		return Message{ID: int64(m.ID), Kind: KindPost, Date: p.Date, Post: p, Unsupported: unsupported, media: m.Media}
	case *tg.MessageService:
		return Message{ID: int64(m.ID), Kind: KindService, Date: time.Unix(int64(m.Date), 0).UTC()}
	case *tg.MessageEmpty:
		return Message{ID: int64(m.ID), Kind: KindEmpty}
	}
	return Message{Kind: KindEmpty}
}

func mapPost(ch Channel, m *tg.Message) (*events.Post, string) {
	p := &events.Post{
		PostRef:         events.PostRef{ChannelID: ch.ID, MessageID: int64(m.ID)},
		ChannelUsername: ch.Username,
		Date:            time.Unix(int64(m.Date), 0).UTC(),
		EditDate:        int64(m.EditDate),
		Text:            m.Message,
		Views:           int64(m.Views),
		Forwards:        int64(m.Forwards),
		AuthorSignature: m.PostAuthor,
		GroupedID:       m.GroupedID,
		Pinned:          m.Pinned,
		Silent:          m.Silent,
		NoForwards:      m.Noforwards,
		Origin:          Origin,
	}
	mapEntities(p, m.Entities)
	// Fields are read directly rather than through flag getters: an absent field decodes
	// as its zero value, and messages built in code need not have their flags set.
	p.Replies = int64(m.Replies.Replies)
	p.Reactions = Reactions(m.Reactions)
	if !m.FwdFrom.Zero() {
		p.Forward = forwardOrigin(m.FwdFrom)
	}
	if m.ReplyTo != nil {
		if r, ok := m.ReplyTo.(*tg.MessageReplyHeader); ok && r.ReplyToMsgID > 0 {
			// A reply to another chat's message names an id of that chat; ReplyTo has no
			// chat, so such a reply is left out rather than misread.
			if peer := r.ReplyToPeerID; peer == nil || peerChannel(peer) == ch.ID {
				p.ReplyTo = &events.ReplyTo{MessageID: int64(r.ReplyToMsgID), TopMessageID: int64(r.ReplyToTopID)}
			}
		}
	}
	var unsupported string
	if media := m.Media; media != nil {
		var md *events.Media
		md, unsupported = describeMedia(media)
		if md != nil {
			p.Media = []events.Media{*md}
		}
		if wp, ok := media.(*tg.MessageMediaWebPage); ok {
			if page, ok := wp.Webpage.(*tg.WebPage); ok {
				p.Links = events.AppendLink(p.Links, page.URL)
			}
		}
	}
	return p, unsupported
}

// Reactions maps reaction counts to emoji → count; custom emoji are keyed
// "custom_emoji:<document id>", paid reactions "paid" (as the export importer does).
func Reactions(r tg.MessageReactions) map[string]int64 {
	if len(r.Results) == 0 {
		return nil
	}
	out := make(map[string]int64, len(r.Results))
	for _, c := range r.Results {
		if c.Count <= 0 {
			continue
		}
		var key string
		switch x := c.Reaction.(type) {
		case *tg.ReactionEmoji:
			key = x.Emoticon
		case *tg.ReactionCustomEmoji:
			key = "custom_emoji:" + strconv.FormatInt(x.DocumentID, 10)
		case *tg.ReactionPaid:
			key = "paid"
		default:
			continue
		}
		out[key] += int64(c.Count)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func forwardOrigin(f tg.MessageFwdHeader) *events.ForwardOrigin {
	o := &events.ForwardOrigin{FromName: f.FromName, MessageID: int64(f.ChannelPost), Author: f.PostAuthor}
	if f.Date > 0 {
		o.Date = time.Unix(int64(f.Date), 0).UTC()
	}
	if f.FromID != nil {
		o.ChannelID = peerChannel(f.FromID)
	}
	return o
}

// peerChannel is the bare id of a channel peer, or 0 for a user or a basic group.
func peerChannel(p tg.PeerClass) events.ChannelID {
	if c, ok := p.(*tg.PeerChannel); ok {
		return events.ChannelID(c.ChannelID)
	}
	return 0
}

// entityTypes names entities as the Telegram Bot API does (and the export importer).
func entityType(e tg.MessageEntityClass) string {
	switch e.(type) {
	case *tg.MessageEntityMention:
		return "mention"
	case *tg.MessageEntityHashtag:
		return "hashtag"
	case *tg.MessageEntityCashtag:
		return "cashtag"
	case *tg.MessageEntityBotCommand:
		return "bot_command"
	case *tg.MessageEntityURL:
		return "url"
	case *tg.MessageEntityEmail:
		return "email"
	case *tg.MessageEntityPhone:
		return "phone_number"
	case *tg.MessageEntityBold:
		return "bold"
	case *tg.MessageEntityItalic:
		return "italic"
	case *tg.MessageEntityUnderline:
		return "underline"
	case *tg.MessageEntityStrike:
		return "strikethrough"
	case *tg.MessageEntitySpoiler:
		return "spoiler"
	case *tg.MessageEntityCode:
		return "code"
	case *tg.MessageEntityPre:
		return "pre"
	case *tg.MessageEntityTextURL:
		return "text_link"
	case *tg.MessageEntityMentionName:
		return "text_mention"
	case *tg.MessageEntityCustomEmoji:
		return "custom_emoji"
	case *tg.MessageEntityBlockquote:
		return "blockquote"
	case *tg.MessageEntityBankCard:
		return "bank_card"
	}
	// messageEntityFormattedDate → formatted_date, and whatever later layers add.
	return snake(strings.TrimPrefix(e.TypeName(), "messageEntity"))
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mapEntities converts entity offsets from UTF-16 code units (Telegram) to code points
// (events.Entity) and collects links, hashtags and mentions.
func mapEntities(p *events.Post, ents []tg.MessageEntityClass) {
	if len(ents) == 0 {
		return
	}
	idx := newUTF16Index(p.Text)
	for _, e := range ents {
		start := idx.runeAt(e.GetOffset())
		end := idx.runeAt(e.GetOffset() + e.GetLength())
		if end <= start {
			continue
		}
		ent := events.Entity{Type: entityType(e), Offset: start, Length: end - start}
		text := idx.slice(start, end)
		switch x := e.(type) {
		case *tg.MessageEntityURL:
			ent.URL = events.NormalizeLink(text)
			p.Links = events.AppendLink(p.Links, ent.URL)
		case *tg.MessageEntityTextURL:
			ent.URL = events.NormalizeLink(x.URL)
			p.Links = events.AppendLink(p.Links, ent.URL)
		case *tg.MessageEntityMentionName:
			ent.UserID = x.UserID
		case *tg.MessageEntityHashtag:
			p.Hashtags = events.AppendUnique(p.Hashtags, strings.TrimPrefix(strings.TrimSpace(text), "#"))
		case *tg.MessageEntityMention:
			p.Mentions = events.AppendUnique(p.Mentions, strings.TrimPrefix(strings.TrimSpace(text), "@"))
		}
		p.Entities = append(p.Entities, ent)
	}
}

// utf16Index maps UTF-16 code unit offsets of a string to code point offsets.
type utf16Index struct {
	runes []rune
	// at[u] is the code point index at UTF-16 offset u; an offset inside a surrogate pair
	// maps to the code point that pair encodes.
	at []int
}

func newUTF16Index(s string) *utf16Index {
	ix := &utf16Index{runes: []rune(s)}
	ix.at = make([]int, 0, len(ix.runes)+1)
	for i, r := range ix.runes {
		n := utf16.RuneLen(r)
		if n < 1 {
			n = 1 // invalid UTF-8 decodes to U+FFFD: one unit
		}
		for range n {
			ix.at = append(ix.at, i)
		}
	}
	ix.at = append(ix.at, len(ix.runes))
	return ix
}

// runeAt is the code point offset of UTF-16 offset u, clamped to the text.
func (ix *utf16Index) runeAt(u int) int {
	switch {
	case u <= 0:
		return 0
	case u >= len(ix.at):
		return len(ix.runes)
	}
	return ix.at[u]
}

func (ix *utf16Index) slice(start, end int) string { return string(ix.runes[start:end]) }

// UTF16ToRunes converts a UTF-16 code unit offset in s to a code point offset (exported for
// tests and other ingest paths).
func UTF16ToRunes(s string, u int) int { return newUTF16Index(s).runeAt(u) }
