package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/media"
)

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func sha(t *testing.T, rel string) string {
	t.Helper()
	s := sha256.Sum256(readFile(t, fixture(t, rel)))
	return hex.EncodeToString(s[:])
}

const testChannel events.ChannelID = 1111111111

// TestChannelExport reads the one-chat fixture, which has every text form and media case,
// and checks each post field by field.
func TestChannelExport(t *testing.T) {
	e := open(t, "channel")
	store := media.NewMemory(0)
	evs := collect(t, e, store)
	ps := posts(evs)

	equal(t, "layout", e.Layout(), export.LayoutChat)
	equal(t, "stats", e.Stats(), export.Stats{
		Chats: 1, Channels: 1, Messages: 18, Posts: 15, Albums: 1,
		Skipped:      map[string]int{export.SkipService: 2, export.SkipUnsupported: 1},
		Media:        9,
		MediaFiles:   5,
		MediaSkipped: map[string]int{export.SkipMissing: 2, export.SkipNotIncluded: 1, export.SkipExportSize: 1},
	})
	equal(t, "chats", e.Chats(), []export.Chat{{
		Name: "Тестовый канал 🚀", Type: export.ChatPublicChannel, ChannelID: testChannel, Imported: true,
		Messages: 18, Posts: 15, Albums: 1, LastMessageID: 18,
		Skipped: map[string]int{export.SkipService: 2, export.SkipUnsupported: 1},
	}})

	t.Run("order", func(t *testing.T) {
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Subject)
		}
		equal(t, "subjects in emission order", got, []string{
			"1111111111/2", "1111111111/3", "1111111111/4", "1111111111/5", "1111111111/6",
			"1111111111/7", "1111111111/8", "1111111111/9", "1111111111/album/-7",
			"1111111111/10", "1111111111/11", "1111111111/12", "1111111111/13", "1111111111/14",
			"1111111111/17", "1111111111/18",
		})
	})

	t.Run("envelope", func(t *testing.T) {
		for _, ev := range evs {
			if _, _, err := events.Encode(ev); err != nil {
				t.Errorf("%s: encode: %v", ev.Subject, err)
			}
			if ev.Source != "tgflow/ingest" || ev.PartitionKey != "1111111111" {
				t.Errorf("%s: source %q, partition key %q", ev.Subject, ev.Source, ev.PartitionKey)
			}
			p, ok := ev.Data.(*events.PostParsed)
			if !ok {
				continue
			}
			// The id recipe shared with the live Telegram path.
			want := events.New(events.ProducerIngest, p, p.Date, strconv.FormatInt(p.EditDate, 10))
			if ev.ID != want.ID || ev.TraceParent != want.TraceParent || !ev.Time.Equal(p.Date) {
				t.Errorf("%s: id %s, want %s", ev.Subject, ev.ID, want.ID)
			}
			if p.Origin != "export" {
				t.Errorf("%s: origin %q", ev.Subject, p.Origin)
			}
		}
	})

	t.Run("plain string text", func(t *testing.T) {
		p := ps[2]
		equal(t, "text", p.Text, "Hello, world")
		equal(t, "entities", p.Entities, []events.Entity(nil))
		equal(t, "date", p.Date, time.Date(2024, 3, 1, 9, 10, 0, 0, time.UTC))
		equal(t, "version", p.Version(), int64(0))
	})

	t.Run("mixed array text", func(t *testing.T) {
		p := ps[3]
		equal(t, "text", p.Text, "Привет 👋 мир! Читайте example.com/статья и это #новости @example_channel")
		// Offsets count code points: "Привет 👋 " is 9 of them (the emoji is one code point,
		// two UTF-16 units, four bytes).
		equal(t, "entities", p.Entities, []events.Entity{
			{Type: "bold", Offset: 9, Length: 3},
			{Type: "url", Offset: 22, Length: 18, URL: "http://example.com/статья"},
			{Type: "text_link", Offset: 43, Length: 3, URL: "https://example.org/a?b=1"},
			{Type: "hashtag", Offset: 47, Length: 8},
			{Type: "mention", Offset: 56, Length: 16},
		})
		runes := []rune(p.Text)
		for _, en := range p.Entities {
			t.Logf("%s %q", en.Type, string(runes[en.Offset:en.Offset+en.Length]))
		}
		equal(t, "hashtag span", string(runes[47:47+8]), "#новости")
		equal(t, "links", p.Links, []string{"http://example.com/статья", "https://example.org/a?b=1"})
		equal(t, "hashtags", p.Hashtags, []string{"новости"})
		equal(t, "mentions", p.Mentions, []string{"example_channel"})
	})

	t.Run("text_entities preferred, edited", func(t *testing.T) {
		p := ps[4]
		equal(t, "text", p.Text, "Emoji 🇷🇺 flag and курсив 🔥 Иван a@example.com https://example.net/go #новости")
		// The flag is two code points (regional indicators).
		equal(t, "entities", p.Entities, []events.Entity{
			{Type: "italic", Offset: 18, Length: 6},
			{Type: "custom_emoji", Offset: 25, Length: 1},
			{Type: "text_mention", Offset: 27, Length: 4, UserID: 123456},
			{Type: "email", Offset: 32, Length: 13},
			{Type: "url", Offset: 46, Length: 22, URL: "https://example.net/go"},
			{Type: "hashtag", Offset: 69, Length: 8},
		})
		equal(t, "links", p.Links, []string{"https://example.net/go"})
		equal(t, "edit date", p.EditDate, int64(1709296200))
		equal(t, "author", p.AuthorSignature, "Редактор")
		var ev events.Event
		for _, x := range evs {
			if x.Subject == "1111111111/4" {
				ev = x
			}
		}
		equal(t, "id carries the version", ev.ID, events.New(events.ProducerIngest, p, p.Date, "1709296200").ID)
	})

	t.Run("forward", func(t *testing.T) {
		equal(t, "forward", ps[5].Forward, &events.ForwardOrigin{FromName: "Other Channel"})
		equal(t, "text", ps[5].Text, "Forwarded text")
	})

	t.Run("reply and reactions", func(t *testing.T) {
		p := ps[6]
		equal(t, "reply", p.ReplyTo, &events.ReplyTo{MessageID: 3})
		equal(t, "reactions", p.Reactions, map[string]int64{
			"👍": 5, "❤": 2, "custom_emoji:5368324170671202286": 1, "paid": 3,
		})
	})

	t.Run("album", func(t *testing.T) {
		for _, id := range []int64{7, 8, 9} {
			equal(t, "grouped id of "+strconv.FormatInt(id, 10), ps[id].GroupedID, int64(-7))
		}
		equal(t, "synthetic id rule", export.SyntheticGroupedID(7), int64(-7))
		equal(t, "albums", albums(evs), []*events.AlbumParsed{{
			ChannelID: testChannel,
			GroupedID: -7,
			Items: []events.AlbumItem{
				{MessageID: 7, MediaKind: "photo", MediaSHA256: sha(t, "channel/photos/photo_1@01-03-2024_10-00-00.jpg")},
				{MessageID: 8, MediaKind: "photo", MediaSHA256: sha(t, "channel/photos/photo_2@01-03-2024_10-00-00.jpg")},
				{MessageID: 9, MediaKind: "video"},
			},
			Caption:  "Альбом: три файла #album",
			PostedAt: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC),
			Inferred: true,
		}})
		equal(t, "caption entity", ps[7].Entities, []events.Entity{{Type: "hashtag", Offset: 18, Length: 6}})
		photo1 := sha(t, "channel/photos/photo_1@01-03-2024_10-00-00.jpg")
		equal(t, "stored photo", ps[7].Media, []events.Media{{
			Kind: "photo", MIME: "image/jpeg", Size: 678, Width: 32, Height: 24,
			FileName: "photo_1@01-03-2024_10-00-00.jpg", SHA256: photo1, ObjectKey: photo1,
		}})
		equal(t, "video not included", ps[9].Media, []events.Media{{
			Kind: "video", MIME: "video/mp4", Size: 1048576, Width: 1280, Height: 720, DurationSec: 12,
			FileName: "clip.mp4", Skipped: export.SkipNotIncluded,
		}})
	})

	t.Run("not an album", func(t *testing.T) {
		// Same second, consecutive ids, but both have a caption.
		equal(t, "grouped ids", []int64{ps[11].GroupedID, ps[12].GroupedID}, []int64{0, 0})
		equal(t, "single photo", ps[10].GroupedID, int64(0))
	})

	t.Run("media", func(t *testing.T) {
		equal(t, "missing file", ps[10].Media, []events.Media{{
			Kind: "photo", MIME: "image/jpeg", Width: 800, Height: 600,
			FileName: "photo_missing@01-03-2024_11-00-00.jpg", Skipped: export.SkipMissing,
		}})
		equal(t, "png", ps[11].Media[0].MIME, "image/png")
		// photo_4 has the bytes of photo_1: same key, stored once.
		equal(t, "content addressed", ps[12].Media[0].SHA256, ps[7].Media[0].SHA256)
		equal(t, "distinct objects stored", store.Len(), 4)
		equal(t, "sticker over the export limit", ps[13].Media, []events.Media{{
			Kind: "sticker", Size: 20480, Width: 512, Height: 512, FileName: "sticker.webp", Skipped: export.SkipExportSize,
		}})
		voice := sha(t, "channel/voice_messages/audio_1@01-03-2024_13-00-00.ogg")
		equal(t, "voice", ps[14].Media, []events.Media{{
			Kind: "voice", MIME: "audio/ogg", Size: 43, DurationSec: 3,
			FileName: "audio_1@01-03-2024_13-00-00.ogg", SHA256: voice, ObjectKey: voice,
		}})
		rc, meta, err := store.Get(context.Background(), voice)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		equal(t, "stored bytes", b.Bytes(), readFile(t, fixture(t, "channel/voice_messages/audio_1@01-03-2024_13-00-00.ogg")))
		equal(t, "stored meta", meta, media.Meta{Name: "audio_1@01-03-2024_13-00-00.ogg", MIME: "audio/ogg"})
	})

	t.Run("poll without text or media", func(t *testing.T) {
		p := ps[17]
		if p == nil || p.Text != "" || len(p.Media) != 0 {
			t.Fatalf("post 17 = %+v", p)
		}
	})

	t.Run("reply to another chat is left out", func(t *testing.T) {
		equal(t, "reply", ps[18].ReplyTo, (*events.ReplyTo)(nil))
		equal(t, "document", ps[18].Media, []events.Media{{
			Kind: "document", MIME: "application/pdf", FileName: "report.pdf", Skipped: export.SkipMissing,
		}})
	})

	t.Run("service and unsupported are skipped", func(t *testing.T) {
		for _, id := range []int64{1, 15, 16} {
			if ps[id] != nil {
				t.Errorf("message %d emitted", id)
			}
		}
	})
}

func TestAccountExport(t *testing.T) {
	e := open(t, "account/result.json")
	evs := collect(t, e, media.NewMemory(0))
	equal(t, "layout", e.Layout(), export.LayoutAccount)
	equal(t, "stats", e.Stats(), export.Stats{
		Chats: 5, Channels: 2, Messages: 7, Posts: 5, Albums: 1,
		ChatsSkipped: map[string]int{
			"not a channel: personal_chat":      1,
			"not a channel: private_supergroup": 1,
			"not a channel: saved_messages":     1,
		},
		Skipped:      map[string]int{export.SkipService: 2},
		Media:        2,
		MediaSkipped: map[string]int{export.SkipNotIncluded: 2},
	})
	var got []string
	for _, c := range e.Chats() {
		got = append(got, c.Path+" "+c.Type+" "+c.ChannelID.String()+" "+strconv.FormatBool(c.Imported))
	}
	equal(t, "chats", got, []string{
		"chats.list[0] personal_chat 0 false",
		// Its messages come before its name, type and id in the file.
		"chats.list[1] public_channel 3333333333 true",
		"chats.list[2] private_supergroup 0 false",
		"chats.list[3] saved_messages 0 false",
		// Its id is written in the Bot API form "-1004444444444".
		"left_chats.list[0] private_channel 4444444444 true",
	})
	got = nil
	for _, ev := range evs {
		got = append(got, ev.Subject)
	}
	equal(t, "subjects", got, []string{
		"3333333333/2", "3333333333/3", "3333333333/4", "3333333333/album/-3", "3333333333/5", "4444444444/2",
	})

	var goNews, left []events.Event
	for _, ev := range evs {
		if ev.PartitionKey == "3333333333" {
			goNews = append(goNews, ev)
		} else {
			left = append(left, ev)
		}
	}
	ps := posts(goNews)
	equal(t, "link", ps[2].Links, []string{"https://example.com/go1.22"})
	equal(t, "hashtag", ps[2].Hashtags, []string{"go"})
	equal(t, "album of placeholders", albums(goNews)[0].Items, []events.AlbumItem{
		{MessageID: 3, MediaKind: "photo"}, {MessageID: 4, MediaKind: "photo"},
	})
	equal(t, "album caption", albums(goNews)[0].Caption, "Gophers")
	equal(t, "forward", ps[5].Forward, &events.ForwardOrigin{FromName: "Тестовый канал 🚀"})
	equal(t, "reply", ps[5].ReplyTo, &events.ReplyTo{MessageID: 2})
	lp := posts(left)[2]
	equal(t, "left channel edit", lp.EditDate, int64(1701511200))
	equal(t, "left channel text", lp.Text, "Исправленный текст")
}

// Older exports have no *_unixtime fields and no text_entities.
func TestOldExport(t *testing.T) {
	e := open(t, "old")
	ps := posts(collect(t, e, nil))
	p := ps[101]
	equal(t, "date read as UTC", p.Date, time.Date(2019, 5, 1, 10, 0, 0, 0, time.UTC))
	equal(t, "edit date", p.EditDate, time.Date(2019, 5, 1, 11, 30, 0, 0, time.UTC).Unix())
	equal(t, "text", p.Text, "Старый экспорт: http://example.org/old #archive")
	equal(t, "entities", p.Entities, []events.Entity{
		{Type: "url", Offset: 16, Length: 22, URL: "http://example.org/old"},
		{Type: "hashtag", Offset: 39, Length: 8},
	})
	equal(t, "animation", ps[103].Media, []events.Media{{
		Kind: "animation", MIME: "video/mp4", Width: 320, Height: 240, DurationSec: 2, Skipped: export.SkipNotIncluded,
	}})
	equal(t, "photo", ps[102].Media[0].Skipped, export.SkipNotIncluded)
}

// Telegram Desktop writes some control characters as "\xHH", which is not JSON; a file may
// also start with a byte order mark. Both are read.
func TestQuirks(t *testing.T) {
	e := open(t, "quirks")
	ps := posts(collect(t, e, nil))
	p := ps[1]
	equal(t, "channel id from channel<id>", p.ChannelID, events.ChannelID(6666666666))
	equal(t, "text", p.Text, "line\vbreak\x1f #after")
	equal(t, "entities", p.Entities, []events.Entity{{Type: "hashtag", Offset: 12, Length: 6}})
}

func TestDeterministic(t *testing.T) {
	for _, rel := range []string{"channel", "account/result.json", "old", "quirks"} {
		t.Run(rel, func(t *testing.T) {
			a := collect(t, open(t, rel), media.NewMemory(0))
			b := collect(t, open(t, rel), media.NewMemory(0))
			if len(a) != len(b) || len(a) == 0 {
				t.Fatalf("%d and %d events", len(a), len(b))
			}
			for i := range a {
				_, ba, err := events.Encode(a[i])
				if err != nil {
					t.Fatal(err)
				}
				_, bb, _ := events.Encode(b[i])
				if a[i].ID != b[i].ID || !bytes.Equal(ba, bb) {
					t.Errorf("event %d differs: %s %s", i, a[i].ID, b[i].ID)
				}
			}
		})
	}
}
