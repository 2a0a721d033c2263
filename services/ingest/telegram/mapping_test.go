package telegram_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/session"
	"github.com/tgflow/tgflow/services/ingest/telegram"
)

var ch = telegram.Channel{ID: 1234567890, AccessHash: 42, Username: "news", Title: "News"}

// u16 is the UTF-16 offset of the first occurrence of sub in s, as Telegram counts.
func u16(t *testing.T, s, sub string) (off, length int) {
	t.Helper()
	rs := []rune(s)
	sr := []rune(sub)
	for i := 0; i+len(sr) <= len(rs); i++ {
		if string(rs[i:i+len(sr)]) == sub {
			return len(utf16.Encode(rs[:i])), len(utf16.Encode(sr))
		}
	}
	t.Fatalf("%q not in %q", sub, s)
	return 0, 0
}

// Telegram counts entity offsets in UTF-16 code units; posts count code points. Emoji
// outside the BMP are two units and one code point, Cyrillic one of each.
func TestEntityOffsetsUTF16ToCodePoints(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		entity string // the span the entity covers
	}{
		{name: "ascii", text: "hello #world", entity: "#world"},
		{name: "cyrillic", text: "Привет, мир! #новости", entity: "#новости"},
		{name: "emoji before", text: "🔥🔥 Горячие #новости", entity: "#новости"},
		{name: "emoji inside", text: "x #a🔥b y", entity: "#a🔥b"},
		{name: "flag and zwj", text: "🇺🇦👨‍👩‍👧 https://example.com/путь", entity: "https://example.com/путь"},
		{name: "at end", text: "Ёжик 🦔", entity: "🦔"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, n := u16(t, tt.text, tt.entity)
			m := &tg.Message{ID: 7, Date: 1700000000, Message: tt.text, PeerID: &tg.PeerChannel{ChannelID: 1234567890},
				Entities: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: off, Length: n}}}
			p := telegram.MapMessage(ch, m).Post
			if len(p.Entities) != 1 {
				t.Fatalf("entities: %+v", p.Entities)
			}
			e := p.Entities[0]
			got := string([]rune(p.Text)[e.Offset : e.Offset+e.Length])
			if got != tt.entity {
				t.Fatalf("entity covers %q, want %q (offset %d length %d)", got, tt.entity, e.Offset, e.Length)
			}
			if err := (&events.PostParsed{Post: *p}).Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUTF16ToRunesClamps(t *testing.T) {
	s := "a🔥b"
	for _, c := range []struct{ u, want int }{{-1, 0}, {0, 0}, {1, 1}, {2, 1}, {3, 2}, {4, 3}, {99, 3}} {
		if got := telegram.UTF16ToRunes(s, c.u); got != c.want {
			t.Errorf("UTF16ToRunes(%q, %d) = %d, want %d", s, c.u, got, c.want)
		}
	}
}

func TestMapMessageFields(t *testing.T) {
	text := "Смотрите 👉 example.com и подробнее, #тег #tag @someone"
	ent := func(sub string, mk func(o, l int) tg.MessageEntityClass) tg.MessageEntityClass {
		o, l := u16(t, text, sub)
		return mk(o, l)
	}
	m := &tg.Message{
		ID: 101, Date: 1700000000, EditDate: 1700000500, Message: text,
		PeerID: &tg.PeerChannel{ChannelID: 1234567890},
		Entities: []tg.MessageEntityClass{
			ent("example.com", func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityURL{Offset: o, Length: l} }),
			ent("подробнее", func(o, l int) tg.MessageEntityClass {
				return &tg.MessageEntityTextURL{Offset: o, Length: l, URL: "https://example.org/more"}
			}),
			ent("#тег", func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityHashtag{Offset: o, Length: l} }),
			ent("#tag", func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityHashtag{Offset: o, Length: l} }),
			ent("@someone", func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityMention{Offset: o, Length: l} }),
			ent("Смотрите", func(o, l int) tg.MessageEntityClass { return &tg.MessageEntityStrike{Offset: o, Length: l} }),
		},
		Views: 1500, Forwards: 12, PostAuthor: "Editor", GroupedID: 99, Pinned: true, Silent: true, Noforwards: true,
		Replies: tg.MessageReplies{Replies: 4},
		Reactions: tg.MessageReactions{Results: []tg.ReactionCount{
			{Reaction: &tg.ReactionEmoji{Emoticon: "❤"}, Count: 10},
			{Reaction: &tg.ReactionCustomEmoji{DocumentID: 555}, Count: 2},
			{Reaction: &tg.ReactionPaid{}, Count: 1},
		}},
		FwdFrom: tg.MessageFwdHeader{FromID: &tg.PeerChannel{ChannelID: 777}, ChannelPost: 55, Date: 1690000000, PostAuthor: "Orig", FromName: ""},
		ReplyTo: &tg.MessageReplyHeader{ReplyToMsgID: 100, ReplyToTopID: 90},
		Media:   &tg.MessageMediaWebPage{Webpage: &tg.WebPage{URL: "https://example.net/page", DisplayURL: "example.net/page"}},
	}
	m.SetFlags()
	got := telegram.MapMessage(ch, m)
	if got.Kind != telegram.KindPost || got.ID != 101 || got.GroupedID() != 99 {
		t.Fatalf("message: %+v", got)
	}
	p := got.Post
	want := events.Post{
		PostRef:         events.PostRef{ChannelID: 1234567890, MessageID: 101},
		ChannelUsername: "news",
		Date:            time.Unix(1700000000, 0).UTC(),
		EditDate:        1700000500,
		Text:            text,
		Links:           []string{"http://example.com", "https://example.org/more", "https://example.net/page"},
		Hashtags:        []string{"тег", "tag"},
		Mentions:        []string{"someone"},
		Forward:         &events.ForwardOrigin{ChannelID: 777, MessageID: 55, Date: time.Unix(1690000000, 0).UTC(), Author: "Orig"},
		ReplyTo:         &events.ReplyTo{MessageID: 100, TopMessageID: 90},
		Views:           1500, Forwards: 12, Replies: 4,
		Reactions:       map[string]int64{"❤": 10, "custom_emoji:555": 2, "paid": 1},
		AuthorSignature: "Editor", GroupedID: 99, Pinned: true, Silent: true, NoForwards: true,
		Origin: telegram.Origin,
	}
	gotNoEnt := *p
	gotNoEnt.Entities = nil
	if !reflect.DeepEqual(gotNoEnt, want) {
		t.Fatalf("post:\n got %+v\nwant %+v", gotNoEnt, want)
	}
	types := []string{}
	for _, e := range p.Entities {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[url text_link hashtag hashtag mention strikethrough]" {
		t.Fatalf("entity types %v", types)
	}
	if p.Entities[1].URL != "https://example.org/more" || p.Entities[0].URL != "http://example.com" {
		t.Fatalf("entity urls %+v", p.Entities)
	}
	if err := (&events.PostParsed{Post: *p}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMapMessageReplyToOtherChatIsDropped(t *testing.T) {
	m := &tg.Message{ID: 3, Date: 1700000000, PeerID: &tg.PeerChannel{ChannelID: 1234567890},
		ReplyTo: &tg.MessageReplyHeader{ReplyToMsgID: 9, ReplyToPeerID: &tg.PeerChannel{ChannelID: 5}}}
	m.SetFlags()
	if p := telegram.MapMessage(ch, m).Post; p.ReplyTo != nil {
		t.Fatalf("reply to another chat kept: %+v", p.ReplyTo)
	}
}

func TestMapMessageKinds(t *testing.T) {
	if m := telegram.MapMessage(ch, &tg.MessageService{ID: 4, Date: 1700000000, Action: &tg.MessageActionPinMessage{}}); m.Kind != telegram.KindService || m.Post != nil {
		t.Fatalf("service: %+v", m)
	}
	if m := telegram.MapMessage(ch, &tg.MessageEmpty{ID: 5}); m.Kind != telegram.KindEmpty || m.ID != 5 {
		t.Fatalf("empty: %+v", m)
	}
}

func TestMediaDescription(t *testing.T) {
	doc := func(mime string, attrs ...tg.DocumentAttributeClass) tg.MessageMediaClass {
		return &tg.MessageMediaDocument{Document: &tg.Document{ID: 1, MimeType: mime, Size: 2048, Attributes: attrs}}
	}
	tests := []struct {
		name        string
		media       tg.MessageMediaClass
		want        *events.Media
		unsupported string
	}{
		{name: "photo", media: &tg.MessageMediaPhoto{Photo: &tg.Photo{ID: 1, Sizes: []tg.PhotoSizeClass{
			&tg.PhotoSize{Type: "m", W: 320, H: 240, Size: 10},
			&tg.PhotoSizeProgressive{Type: "y", W: 1280, H: 960, Sizes: []int{100, 500, 900}},
		}}}, want: &events.Media{Kind: events.MediaPhoto, MIME: "image/jpeg", Size: 900, Width: 1280, Height: 960}},
		{name: "empty photo", media: &tg.MessageMediaPhoto{Photo: &tg.PhotoEmpty{ID: 1}},
			want: &events.Media{Kind: events.MediaPhoto, Skipped: telegram.SkipUnavailable}},
		{name: "video", media: doc("video/mp4", &tg.DocumentAttributeVideo{W: 640, H: 360, Duration: 12.5}, &tg.DocumentAttributeFilename{FileName: "v.mp4"}),
			want: &events.Media{Kind: events.MediaVideo, MIME: "video/mp4", Size: 2048, Width: 640, Height: 360, DurationSec: 12.5, FileName: "v.mp4"}},
		{name: "gif", media: doc("video/mp4", &tg.DocumentAttributeAnimated{}, &tg.DocumentAttributeVideo{W: 200, H: 100, Duration: 2}),
			want: &events.Media{Kind: events.MediaAnimation, MIME: "video/mp4", Size: 2048, Width: 200, Height: 100, DurationSec: 2}},
		{name: "webp document", media: doc("image/webp", &tg.DocumentAttributeImageSize{W: 512, H: 512}, &tg.DocumentAttributeFilename{FileName: "x.webp"}),
			want: &events.Media{Kind: events.MediaDocument, MIME: "image/webp", Size: 2048, Width: 512, Height: 512, FileName: "x.webp"}},
		{name: "sticker", media: doc("image/webp", &tg.DocumentAttributeSticker{Alt: "😀", Stickerset: &tg.InputStickerSetEmpty{}}),
			want: &events.Media{Kind: events.MediaSticker, MIME: "image/webp", Size: 2048}},
		{name: "voice", media: doc("audio/ogg", &tg.DocumentAttributeAudio{Voice: true, Duration: 3}),
			want: &events.Media{Kind: events.MediaVoice, MIME: "audio/ogg", Size: 2048, DurationSec: 3}},
		{name: "audio", media: doc("audio/mpeg", &tg.DocumentAttributeAudio{Duration: 200, Title: "song"}),
			want: &events.Media{Kind: events.MediaAudio, MIME: "audio/mpeg", Size: 2048, DurationSec: 200}},
		{name: "pdf", media: doc("application/pdf", &tg.DocumentAttributeFilename{FileName: "report.pdf"}),
			want: &events.Media{Kind: events.MediaDocument, MIME: "application/pdf", Size: 2048, FileName: "report.pdf"}},
		{name: "poll", media: &tg.MessageMediaPoll{Poll: tg.Poll{ID: 1}}, unsupported: "unsupported media: poll"},
		{name: "geo", media: &tg.MessageMediaGeo{Geo: &tg.GeoPointEmpty{}}, unsupported: "unsupported media: geo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &tg.Message{ID: 1, Date: 1700000000, PeerID: &tg.PeerChannel{ChannelID: 1234567890}, Media: tt.media}
			m.SetFlags()
			got := telegram.MapMessage(ch, m)
			var md *events.Media
			if len(got.Post.Media) == 1 {
				md = &got.Post.Media[0]
			}
			if !reflect.DeepEqual(md, tt.want) || got.Unsupported != tt.unsupported {
				t.Fatalf("media %+v unsupported %q; want %+v %q", md, got.Unsupported, tt.want, tt.unsupported)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		class telegram.Class
		code  string
	}{
		{name: "revoked", err: fmt.Errorf("history: %w", tgerr.New(401, "SESSION_REVOKED")), class: telegram.ClassAuth, code: "SESSION_REVOKED"},
		{name: "unregistered", err: tgerr.New(401, "AUTH_KEY_UNREGISTERED"), class: telegram.ClassAuth, code: "AUTH_KEY_UNREGISTERED"},
		{name: "deactivated", err: tgerr.New(400, "USER_DEACTIVATED"), class: telegram.ClassAuth, code: "USER_DEACTIVATED"},
		{name: "not logged in", err: telegram.ErrNotAuthorized, class: telegram.ClassAuth, code: "NOT_AUTHORIZED"},
		{name: "wrong session key", err: fmt.Errorf("load: %w", session.ErrWrongKey), class: telegram.ClassAuth, code: "SESSION_KEY"},
		{name: "private", err: tgerr.New(400, "CHANNEL_PRIVATE"), class: telegram.ClassChannel, code: "CHANNEL_PRIVATE"},
		{name: "no such user", err: tgerr.New(400, "USERNAME_NOT_OCCUPIED"), class: telegram.ClassChannel, code: "USERNAME_NOT_OCCUPIED"},
		{name: "bad username", err: tgerr.New(400, "USERNAME_INVALID"), class: telegram.ClassChannel, code: "USERNAME_INVALID"},
		{name: "invalid channel", err: tgerr.New(400, "CHANNEL_INVALID"), class: telegram.ClassChannel, code: "CHANNEL_INVALID"},
		{name: "not a channel", err: &telegram.ChannelError{Code: telegram.CodeNotAChannel}, class: telegram.ClassChannel, code: telegram.CodeNotAChannel},
		{name: "flood", err: &telegram.FloodWaitError{Wait: time.Hour, Message: "FLOOD_WAIT_3600"}, class: telegram.ClassFlood, code: "FLOOD_WAIT"},
		{name: "raw flood", err: tgerr.New(420, "FLOOD_WAIT_30"), class: telegram.ClassFlood, code: "FLOOD_WAIT"},
		{name: "server", err: tgerr.New(500, "INTERNAL"), class: telegram.ClassTransient, code: "INTERNAL"},
		{name: "network", err: errors.New("connection reset"), class: telegram.ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := telegram.Classify(tt.err)
			if f.Class != tt.class || f.Code != tt.code {
				t.Fatalf("Classify(%v) = %+v, want %s %s", tt.err, f, tt.class, tt.code)
			}
		})
	}
	if f := telegram.Classify(&telegram.FloodWaitError{Wait: time.Hour}); f.Wait != time.Hour {
		t.Fatalf("flood wait lost: %+v", f)
	}
}
