package telegram_test

import (
	"testing"
	"unicode/utf8"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"

	"github.com/tgflow/tgflow/services/ingest/telegram"
)

// FuzzMapMessage: any message the Telegram wire format can carry (decoded from bytes, so
// entity offsets and lengths are arbitrary, surrogate pairs split, text not UTF-8) maps
// without a panic to a post whose entities lie inside its text and whose links, hashtags
// and mentions are valid UTF-8.
func FuzzMapMessage(f *testing.F) {
	seeds := []*tg.Message{
		{ID: 1, Date: 1700000000, Message: "Релиз Go 1.26 👍 #golang https://go.dev/doc?utm_source=x",
			Entities: []tg.MessageEntityClass{
				&tg.MessageEntityHashtag{Offset: 16, Length: 7},
				&tg.MessageEntityURL{Offset: 24, Length: 32},
				&tg.MessageEntityBold{Offset: 0, Length: 5},
			}},
		{ID: 2, Date: 1700000001, Message: "😀😀 @news", Entities: []tg.MessageEntityClass{
			&tg.MessageEntityMention{Offset: 1, Length: 40}, // starts inside a surrogate pair, ends past the text
			&tg.MessageEntityTextURL{Offset: 0, Length: 2, URL: "HTTP://Example.COM:80/a#frag"},
		}},
		{ID: 3, Date: 1700000002, Message: "", Entities: []tg.MessageEntityClass{
			&tg.MessageEntityPre{Offset: 1 << 30, Length: 1 << 30},
		}},
	}
	for _, m := range seeds {
		m.PeerID = &tg.PeerChannel{ChannelID: int64(ch.ID)}
		var b bin.Buffer
		if err := m.Encode(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Buf)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m tg.Message
		if err := m.Decode(&bin.Buffer{Buf: data}); err != nil {
			return // not a message on the wire: the client would have refused it earlier
		}
		msg := telegram.MapMessage(ch, &m)
		if msg.Kind != telegram.KindPost || msg.Post == nil {
			t.Fatalf("a tg.Message mapped to kind %q", msg.Kind)
		}
		p := msg.Post
		n := utf8.RuneCountInString(p.Text)
		for i, e := range p.Entities {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
				t.Fatalf("entity %d (%s) at %d+%d lies outside the text of %d code points", i, e.Type, e.Offset, e.Length, n)
			}
		}
		for _, s := range append(append(append([]string{}, p.Links...), p.Hashtags...), p.Mentions...) {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in %q", s)
			}
		}
	})
}
