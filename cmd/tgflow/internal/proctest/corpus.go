package proctest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"time"

	"github.com/tgflow/tgflow/events"
)

// Corpus is a generated workload: facts as ingest would publish them (posts over several
// channels, some with links to a page server, some with images, albums, edits and
// deletions), and the images the posts name, by hex sha256.
type Corpus struct {
	Facts  []events.Event
	Images map[string][]byte
	// Posts, Edits, Deletes and Albums count what Facts holds.
	Posts, Edits, Deletes, Albums int
}

// CorpusOptions shape a Corpus.
type CorpusOptions struct {
	Posts    int
	Channels int
	// PageURL is the base URL of the page server; a third of the posts link to
	// PageURL/a/<n>.
	PageURL string
	Seed    uint64
}

// NewCorpus generates a corpus; the same options give the same corpus.
func NewCorpus(o CorpusOptions) *Corpus {
	r := rand.New(rand.NewPCG(o.Seed, 0x7467666c6f77))
	c := &Corpus{Images: map[string][]byte{}}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	topics := []string{
		"Вышел релиз Go 1.26: дженерики быстрее, сборщик мусора тише. Go 1.26 released with faster generics.",
		"NATS JetStream хранит журнал фактов; JetStream keeps the log of facts replicated.",
		"Postgres 18 умеет асинхронный ввод-вывод. Postgres 18 brings asynchronous I/O.",
		"Qdrant ищет по векторам с фильтрами. Qdrant searches vectors with payload filters.",
		"Нейросети распознают текст на картинках. Neural networks read text in pictures.",
	}
	img := func(n int) events.Media {
		b, err := pngOf(n)
		if err != nil {
			panic(err) // an in-memory PNG encode of a fixed image cannot fail
		}
		sum := sha256.Sum256(b)
		key := hex.EncodeToString(sum[:])
		c.Images[key] = b
		return events.Media{Kind: events.MediaPhoto, MIME: "image/png", Size: int64(len(b)), Width: 64, Height: 64, SHA256: key, ObjectKey: key}
	}
	var grouped int64 = 9000
	msg := map[events.ChannelID]int64{}
	for i := 0; i < o.Posts; {
		ch := events.ChannelID(2000 + r.IntN(max(o.Channels, 1)))
		at := t0.Add(time.Duration(i) * 37 * time.Second)
		if r.IntN(12) == 0 && i+3 <= o.Posts { // an album of 3 photos
			grouped++
			var items []events.AlbumItem
			for k := range 3 {
				msg[ch]++
				m := img(i*10 + k)
				p := events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg[ch]}, ChannelUsername: fmt.Sprintf("chan%d", ch),
					Date: at, GroupedID: grouped, Media: []events.Media{m}}
				if k == 0 {
					p.Text = "Альбом: " + topics[r.IntN(len(topics))]
				}
				c.Facts = append(c.Facts, events.PostEvent(&events.PostParsed{Post: p}))
				items = append(items, events.AlbumItem{MessageID: p.MessageID, MediaKind: m.Kind, MediaSHA256: m.SHA256})
				i++
				c.Posts++
			}
			c.Facts = append(c.Facts, events.New(events.ProducerIngest,
				&events.AlbumParsed{ChannelID: ch, GroupedID: grouped, Items: items, PostedAt: at}, at))
			c.Albums++
			continue
		}
		msg[ch]++
		p := events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg[ch]}, ChannelUsername: fmt.Sprintf("chan%d", ch),
			Date: at, Text: fmt.Sprintf("%s #тест%d (%d)", topics[r.IntN(len(topics))], r.IntN(4), i)}
		if o.PageURL != "" && r.IntN(3) == 0 {
			u := fmt.Sprintf("%s/a/%d", o.PageURL, r.IntN(20))
			p.Text += " " + u
			p.Links = []string{u}
		}
		if r.IntN(5) == 0 {
			p.Media = []events.Media{img(i * 10)}
		}
		c.Facts = append(c.Facts, events.PostEvent(&events.PostParsed{Post: p}))
		c.Posts++
		i++
		switch r.IntN(15) {
		case 0: // edited an hour later
			e := p
			e.EditDate = at.Add(time.Hour).Unix()
			e.Text += " (исправлено / edited)"
			c.Facts = append(c.Facts, events.New(events.ProducerIngest, &events.PostEdited{Post: e}, at.Add(time.Hour), "edit", fmt.Sprint(e.EditDate)))
			c.Edits++
		case 1: // deleted
			c.Facts = append(c.Facts, events.New(events.ProducerIngest, &events.PostDeleted{PostRef: p.PostRef, DeletedAt: at.Add(2 * time.Hour)}, at.Add(2*time.Hour)))
			c.Deletes++
		}
	}
	return c
}

// pngOf is a 64×64 PNG that differs per n (blocks of colour from n's bits).
func pngOf(n int) ([]byte, error) {
	im := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			bit := (n >> ((x/16 + y/16*4) % 16)) & 1
			v := uint8(40 + 170*bit)
			im.Set(x, y, color.RGBA{v, uint8(n * 37), 255 - v, 255})
		}
	}
	var b bytes.Buffer
	err := png.Encode(&b, im)
	return b.Bytes(), err
}
