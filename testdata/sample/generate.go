//go:build ignore

// generate writes the demo export under DataExport/: a small Telegram Desktop
// whole-account JSON export with tiny images. The output is deterministic; run it again
// after changing the content below:
//
//	go generate ./testdata/sample
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"log"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// outDir is where the export is written (-out; sample_test writes a copy elsewhere to check
// that the committed one is what this program writes).
var outDir = "DataExport"

// maxImageBytes keeps the embedded sample small; the pictures with text (which OCR must
// read) may be larger.
const (
	maxImageBytes     = 5000
	maxTextImageBytes = 12000
)

// fontPath is DejaVu Sans (Debian fonts-dejavu-core), with Cyrillic: the text of the sign
// pictures is drawn with it.
const fontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

func main() {
	flag.StringVar(&outDir, "out", outDir, "folder to write the export to (replaced)")
	flag.Parse()
	if err := os.RemoveAll(outDir); err != nil {
		log.Fatal(err)
	}
	images := map[string][]byte{}
	for name, spec := range imageSpecs {
		images[name] = spec.encode()
		limit := maxImageBytes
		if len(spec.lines) > 0 {
			limit = maxTextImageBytes
		}
		if n := len(images[name]); n >= limit {
			log.Fatalf("image %s is %d bytes, want < %d", name, n, limit)
		}
	}

	var chats, left []any
	for i, c := range channels {
		folder := fmt.Sprintf("chats/chat_%03d", i+1)
		o, files := c.build(folder, images)
		for rel, data := range files {
			write(rel, data)
		}
		if c.left {
			left = append(left, o)
		} else {
			chats = append(chats, o)
		}
	}
	chats = append(chats, personal.chatOnly())

	root := obj{
		{"about", "Here is the data you requested. This sample was written by tgflow's testdata/sample/generate.go; every name, link and picture in it is made up."},
		{"personal_information", obj{
			{"user_id", 100500},
			{"first_name", "Demo"},
			{"last_name", "User"},
			{"phone_number", "+0 000 000 0000"},
			{"username", "@tgflow_demo"},
		}},
		{"chats", obj{
			{"about", "This page lists all chats from this export."},
			{"list", chats},
		}},
		{"left_chats", obj{
			{"about", "This page lists all supergroups and channels from this export that you've left."},
			{"list", left},
		}},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(root); err != nil {
		log.Fatal(err)
	}
	write("result.json", b.Bytes())
}

func write(rel string, data []byte) {
	p := filepath.Join(outDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		log.Fatal(err)
	}
}

// obj is a JSON object that keeps its key order, as Telegram Desktop writes them.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(f.v); err != nil {
			return nil, err
		}
		b.Write(bytes.TrimRight(vb.Bytes(), "\n"))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ---- content ----

type channel struct {
	name string
	typ  string
	id   any // written as is: a number, or a string form
	left bool
	msgs []msg
}

type msg struct {
	id       int
	at       string // "2024-05-06 10:00"
	edited   string
	service  string // action of a service message
	text     []any  // string or ent
	photo    string // image name
	video    bool   // a video file the export did not include
	fwd      string
	reply    int
	reacts   []react
	from     string
	authorOf string
}

type ent struct{ typ, text, href string }

type react struct {
	emoji string
	n     int
}

func link(u string) ent          { return ent{typ: "link", text: u} }
func textLink(t, u string) ent   { return ent{typ: "text_link", text: t, href: u} }
func tag(t string) ent           { return ent{typ: "hashtag", text: t} }
func mention(t string) ent       { return ent{typ: "mention", text: t} }
func bold(t string) ent          { return ent{typ: "bold", text: t} }
func italic(t string) ent        { return ent{typ: "italic", text: t} }
func t(parts ...any) []any       { return parts }
func r(e string, n int) react    { return react{e, n} }
func reacts(rs ...react) []react { return rs }

var moscow = time.FixedZone("MSK", 3*3600)

func ts(s string) time.Time {
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, moscow)
	if err != nil {
		log.Fatal(err)
	}
	return tm
}

func (c channel) build(folder string, images map[string][]byte) (obj, map[string][]byte) {
	files := map[string][]byte{}
	var msgs []any
	for _, m := range c.msgs {
		msgs = append(msgs, m.build(c, folder, images, files))
	}
	return obj{{"name", c.name}, {"type", c.typ}, {"id", c.id}, {"messages", msgs}}, files
}

func (p channel) chatOnly() obj {
	o, _ := p.build("chats/chat_personal", nil)
	return o
}

func (m msg) build(c channel, folder string, images map[string][]byte, files map[string][]byte) obj {
	at := ts(m.at)
	o := obj{{"id", m.id}}
	if m.service != "" {
		o = append(o, kv{"type", "service"})
	} else {
		o = append(o, kv{"type", "message"})
	}
	o = append(o, kv{"date", at.Format("2006-01-02T15:04:05")}, kv{"date_unixtime", strconv.FormatInt(at.Unix(), 10)})
	if m.edited != "" {
		e := ts(m.edited)
		o = append(o, kv{"edited", e.Format("2006-01-02T15:04:05")}, kv{"edited_unixtime", strconv.FormatInt(e.Unix(), 10)})
	}
	fromID := "channel" + channelBare(c.id)
	if m.service != "" {
		o = append(o, kv{"actor", c.name}, kv{"actor_id", fromID}, kv{"action", m.service})
		if m.service == "create_channel" {
			o = append(o, kv{"title", c.name})
		}
		if m.reply != 0 {
			o = append(o, kv{"message_id", m.reply})
		}
		return append(o, kv{"text", ""}, kv{"text_entities", []any{}})
	}
	from := c.name
	if m.from != "" {
		from, fromID = m.from, "user555"
	}
	o = append(o, kv{"from", from}, kv{"from_id", fromID})
	if m.authorOf != "" {
		o = append(o, kv{"author", m.authorOf})
	}
	if m.fwd != "" {
		o = append(o, kv{"forwarded_from", m.fwd})
	}
	if m.reply != 0 {
		o = append(o, kv{"reply_to_message_id", m.reply})
	}
	if m.photo != "" {
		data, ok := images[m.photo]
		if !ok {
			log.Fatalf("no image %q", m.photo)
		}
		ext := ".jpg"
		if imageSpecs[m.photo].png {
			ext = ".png"
		}
		rel := path.Join(folder, "photos", fmt.Sprintf("photo_%d@%s%s", m.id, at.Format("02-01-2006_15-04-05"), ext))
		files[rel] = data
		spec := imageSpecs[m.photo]
		o = append(o, kv{"photo", rel}, kv{"photo_file_size", len(data)}, kv{"width", spec.w}, kv{"height", spec.h})
	}
	if m.video {
		notIncluded := "(File not included. Change data exporting settings to download.)"
		o = append(o,
			kv{"file", notIncluded}, kv{"file_name", fmt.Sprintf("video_%d.mp4", m.id)}, kv{"file_size", 2457600},
			kv{"thumbnail", notIncluded}, kv{"media_type", "video_file"}, kv{"mime_type", "video/mp4"},
			kv{"duration_seconds", 14}, kv{"width", 1280}, kv{"height", 720})
	}
	text, ents := renderText(m.text)
	o = append(o, kv{"text", text}, kv{"text_entities", ents})
	if len(m.reacts) > 0 {
		var rs []any
		for _, r := range m.reacts {
			rs = append(rs, obj{{"type", "emoji"}, {"count", r.n}, {"emoji", r.emoji}})
		}
		o = append(o, kv{"reactions", rs})
	}
	return o
}

// renderText writes "text" the way Telegram Desktop does (a plain string when there are no
// entities, else an array of strings and entity objects) and "text_entities" (objects only).
func renderText(parts []any) (any, []any) {
	var arr []any
	ents := []any{}
	plainOnly := true
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			arr = append(arr, p)
			ents = append(ents, obj{{"type", "plain"}, {"text", p}})
		case ent:
			plainOnly = false
			o := obj{{"type", p.typ}, {"text", p.text}}
			if p.href != "" {
				o = append(o, kv{"href", p.href})
			}
			arr = append(arr, o)
			ents = append(ents, o)
		}
	}
	if len(parts) == 0 {
		return "", ents
	}
	if plainOnly && len(arr) == 1 {
		return arr[0], ents
	}
	return arr, ents
}

func channelBare(id any) string {
	switch id := id.(type) {
	case int:
		return strconv.Itoa(id)
	case string:
		if len(id) > 4 && id[:4] == "-100" {
			return id[4:]
		}
		return id
	}
	return fmt.Sprint(id)
}

// ---- images ----

type imageSpec struct {
	w, h  int
	png   bool
	base  color.RGBA
	shape string
	seed  float64
	// lines, when set, make a sign: this text in DejaVu Sans, dark on base (w and h are
	// then computed), for OCR to read.
	lines []string
}

var imageSpecs = map[string]imageSpec{
	"sunset":    {w: 96, h: 64, base: color.RGBA{250, 120, 60, 255}, shape: "sun", seed: 1},
	"gopher":    {w: 64, h: 64, png: true, base: color.RGBA{110, 200, 230, 255}, shape: "circle", seed: 2},
	"diagram":   {w: 96, h: 64, png: true, base: color.RGBA{240, 240, 240, 255}, shape: "boxes", seed: 3},
	"galaxy":    {w: 96, h: 64, base: color.RGBA{20, 20, 60, 255}, shape: "spiral", seed: 4},
	"moon":      {w: 64, h: 64, base: color.RGBA{10, 10, 30, 255}, shape: "moon", seed: 5},
	"street":    {w: 96, h: 64, base: color.RGBA{90, 90, 100, 255}, shape: "stripes", seed: 6},
	"bridge":    {w: 96, h: 64, base: color.RGBA{70, 130, 180, 255}, shape: "arch", seed: 7},
	"tram":      {w: 96, h: 64, base: color.RGBA{200, 60, 50, 255}, shape: "boxes", seed: 8},
	"park":      {w: 96, h: 64, base: color.RGBA{60, 160, 80, 255}, shape: "circle", seed: 9},
	"rocket":    {w: 64, h: 96, base: color.RGBA{30, 30, 50, 255}, shape: "rocket", seed: 10},
	"notebook":  {w: 64, h: 64, png: true, base: color.RGBA{250, 245, 220, 255}, shape: "stripes", seed: 11},
	"telescope": {w: 96, h: 64, base: color.RGBA{40, 40, 70, 255}, shape: "arch", seed: 12},
	// The album of signs: readable text in Russian and in English, for OCR.
	"sign_ru": {png: true, base: color.RGBA{250, 250, 240, 255}, lines: []string{"Трамвай 7: Садовая улица", "Интервал движения 10 минут"}},
	"sign_en": {png: true, base: color.RGBA{240, 248, 255, 255}, lines: []string{"Tram 7: Garden Street", "Runs every 10 minutes"}},
}

func init() {
	for name, s := range imageSpecs {
		if len(s.lines) > 0 {
			s.w, s.h = textSize(s.lines)
			imageSpecs[name] = s
		}
	}
}

// textFace is DejaVu Sans at the size of the signs.
var textFace = sync.OnceValue(func() font.Face {
	data, err := os.ReadFile(fontPath)
	if err != nil {
		log.Fatalf("font (apt-get install fonts-dejavu-core): %v", err)
	}
	f, err := opentype.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 26, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		log.Fatal(err)
	}
	return face
})

const textMargin = 24

func lineHeight() int { return (textFace().Metrics().Height * 14 / 10).Ceil() }

func textSize(lines []string) (w, h int) {
	for _, l := range lines {
		w = max(w, font.MeasureString(textFace(), l).Ceil())
	}
	return w + 2*textMargin, lineHeight()*len(lines) + 2*textMargin
}

// encodeSign draws s's lines dark on its background and writes a grey-level paletted PNG
// (small, and lossless: the text stays sharp).
func (s imageSpec) encodeSign() []byte {
	img := image.NewRGBA(image.Rect(0, 0, s.w, s.h))
	draw.Draw(img, img.Bounds(), image.NewUniform(s.base), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{25, 25, 40, 255}), Face: textFace()}
	for i, l := range s.lines {
		d.Dot = fixed.P(textMargin, textMargin+i*lineHeight()+textFace().Metrics().Ascent.Ceil())
		d.DrawString(l)
	}
	pal := make(color.Palette, 0, 16)
	for i := range 16 {
		f := float64(i) / 15
		pal = append(pal, color.RGBA{uint8(25 + f*float64(s.base.R-25)), uint8(25 + f*float64(s.base.G-25)), uint8(40 + f*float64(s.base.B-40)), 255})
	}
	out := image.NewPaletted(img.Bounds(), pal)
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, out); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func (s imageSpec) encode() []byte {
	if len(s.lines) > 0 {
		return s.encodeSign()
	}
	img := image.NewRGBA(image.Rect(0, 0, s.w, s.h))
	cx, cy := float64(s.w)/2, float64(s.h)/2
	for y := range s.h {
		for x := range s.w {
			fx, fy := float64(x), float64(y)
			shade := 1 - 0.4*fy/float64(s.h)
			c := color.RGBA{uint8(float64(s.base.R) * shade), uint8(float64(s.base.G) * shade), uint8(float64(s.base.B) * shade), 255}
			dx, dy := fx-cx, fy-cy
			d := math.Hypot(dx, dy)
			switch s.shape {
			case "sun":
				if math.Hypot(fx-cx, fy-float64(s.h)*0.7) < float64(s.h)/4 {
					c = color.RGBA{255, 230, 120, 255}
				}
				if fy > float64(s.h)*0.75 {
					c = color.RGBA{40, 60, 120, 255}
				}
			case "circle":
				if d < float64(min(s.w, s.h))/3 {
					c = color.RGBA{uint8(40 * s.seed), 90, 160, 255}
				}
			case "boxes":
				if (x/16+y/16)%2 == 0 && x%16 > 2 && y%16 > 2 {
					c = color.RGBA{uint8(20 * s.seed), 110, 200, 255}
				}
			case "spiral":
				a := math.Atan2(dy, dx)
				if math.Mod(d/4-a*1.5+20, 6.28) < 1.2 && d < 30 {
					c = color.RGBA{220, 200, 255, 255}
				}
			case "moon":
				if d < 22 && math.Hypot(dx-9, dy-6) > 18 {
					c = color.RGBA{240, 240, 210, 255}
				}
			case "stripes":
				if (x+int(s.seed)*3)%12 < 4 {
					c = color.RGBA{230, 210, 60, 255}
				}
			case "arch":
				if d > 26 && d < 31 && dy < 0 {
					c = color.RGBA{230, 230, 230, 255}
				}
			case "rocket":
				if math.Abs(dx) < 7 && fy > 20 && fy < 70 {
					c = color.RGBA{230, 230, 240, 255}
				}
				if math.Abs(dx) < 4 && fy >= 70 && fy < 82 {
					c = color.RGBA{255, 140, 40, 255}
				}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	var err error
	if s.png {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 55})
	}
	if err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

// ---- the channels ----

const (
	techName  = "Tech Digest"
	scienceRU = "Наука и космос"
	cityName  = "Город в кадре | City Lens"
)

var channels = []channel{
	{name: techName, typ: "public_channel", id: 1700000001, msgs: []msg{
		{id: 1, at: "2024-05-06 09:00", service: "create_channel"},
		{id: 2, at: "2024-05-06 09:05", text: t("Welcome to Tech Digest: short notes on Go, NATS and event-driven systems. ", tag("#intro"))},
		{id: 3, at: "2024-05-06 10:00", text: t("Go 1.23 brings range-over-func iterators. Release notes: ", link("https://example.com/go/1.23"), " ", tag("#golang")), reacts: reacts(r("👍", 12), r("🔥", 4))},
		{id: 4, at: "2024-05-06 11:30", edited: "2024-05-06 12:10", authorOf: "Anna", text: t("Why an event log beats a pile of queues — ", textLink("a long read", "https://blog.example.com/event-log"), ". ", tag("#eventsourcing"), " ", tag("#nats"))},
		{id: 5, at: "2024-05-06 13:00", reply: 3, text: t("Follow-up: the iterator proposal discussion is at ", link("https://example.org/proposals/61405"), " ", tag("#golang"))},
		{id: 6, at: "2024-05-06 14:00", photo: "diagram", text: t("Architecture sketch: stream → stages → projections ", tag("#architecture"))},
		{id: 7, at: "2024-05-06 14:00", photo: "gopher"},
		{id: 8, at: "2024-05-07 09:00", text: t("JetStream object store keeps media content-addressed: same bytes, one object. Docs: ", link("docs.example.net/jetstream/object-store"), " ", tag("#nats"))},
		{id: 9, at: "2024-05-07 19:30", photo: "sunset", text: t("Evening in the office. The same picture is in ", mention("@city_lens_demo"), " — stored once.")},
		{id: 10, at: "2024-05-08 10:00", fwd: scienceRU, text: t("Телескоп нового поколения получил первые снимки ", tag("#космос"))},
		{id: 11, at: "2024-05-08 12:00", text: t("Benchmarks: ", bold("1.2M msgs/s"), " on a laptop with an embedded NATS server ", link("https://example.com/bench")), reacts: reacts(r("🤯", 3))},
		{id: 12, at: "2024-05-08 12:05", service: "pin_message", reply: 4},
		{id: 13, at: "2024-05-08 12:30", reply: 11, text: t("Numbers are from a synthetic load; the method is at ", link("https://example.org/bench-method"))},
		{id: 14, at: "2024-05-09 18:00", video: true, text: t("Talk recording: event sourcing in Go ", tag("#golang"), " ", tag("#talks"))},
		{id: 15, at: "2024-05-10 09:00", fwd: cityName, photo: "bridge", text: t("Новый мост / The new bridge ", tag("#city"))},
		{id: 16, at: "2024-05-10 18:00", text: t("Weekly links: ", link("https://example.com/weekly/19"), ", ", link("https://news.example.org/go-generics"), ", ", link("https://example.net/nats-kv"), " ", tag("#digest"))},
	}},
	{name: scienceRU, typ: "public_channel", id: 1700000002, msgs: []msg{
		{id: 1, at: "2024-05-06 08:00", service: "create_channel"},
		{id: 2, at: "2024-05-06 08:10", text: t("Добро пожаловать! Здесь новости науки и космоса. ", tag("#наука"))},
		{id: 3, at: "2024-05-06 12:00", text: t("Телескоп нового поколения получил первые снимки ", tag("#космос")), reacts: reacts(r("🔥", 20), r("👍", 7))},
		{id: 4, at: "2024-05-06 12:30", photo: "galaxy", text: t("Первые кадры: галактика и Луна ", tag("#космос"), " ", tag("#фото"))},
		{id: 5, at: "2024-05-06 12:30", photo: "moon"},
		{id: 6, at: "2024-05-06 14:00", reply: 3, text: t("Подробности миссии: ", link("https://example.org/missions/telescope"), " ", tag("#космос"))},
		{id: 7, at: "2024-05-06 15:00", fwd: techName, text: t("Go 1.23 brings range-over-func iterators. Release notes: ", link("https://example.com/go/1.23"), " ", tag("#golang"))},
		{id: 8, at: "2024-05-07 10:00", edited: "2024-05-07 16:45", text: t("Запуск ракеты перенесён на ", bold("12 мая"), ". Трансляция: ", link("https://example.net/live/launch"))},
		{id: 9, at: "2024-05-07 11:00", photo: "rocket", text: t("Ракета на стартовом столе ", tag("#космос"))},
		{id: 10, at: "2024-05-08 09:00", text: t("Учёные ", mention("@nauka_demo"), " объяснили, почему небо голубое: ", textLink("статья", "https://news.example.org/sky-blue"), " ", tag("#наука"))},
		{id: 11, at: "2024-05-08 09:30", reply: 10, text: t("Коротко: рассеяние Рэлея. ", italic("Подробнее"), " — в статье выше. ", tag("#наука")), reacts: reacts(r("❤", 9))},
		{id: 12, at: "2024-05-09 22:00", photo: "telescope", text: t("Обсерватория ночью ", tag("#фото"))},
		{id: 13, at: "2024-05-09 22:05", service: "pin_message", reply: 3},
		{id: 14, at: "2024-05-10 20:00", fwd: cityName, text: t("Ночной город с высоты ", tag("#город"))},
		{id: 15, at: "2024-05-10 21:00", text: t("Итоги недели: ", link("https://example.com/science/week-19"), " ", tag("#наука"), " ", tag("#космос"))},
	}},
	{name: cityName, typ: "public_channel", id: 1700000003, msgs: []msg{
		{id: 1, at: "2024-05-05 10:00", service: "create_channel"},
		{id: 2, at: "2024-05-05 10:05", text: t("Фотографии города / photos of the city. ", tag("#city"), " ", tag("#город"))},
		{id: 3, at: "2024-05-06 17:00", photo: "street", text: t("Прогулка по центру / A walk downtown ", tag("#фото"))},
		{id: 4, at: "2024-05-06 17:00", photo: "tram"},
		{id: 5, at: "2024-05-06 17:00", photo: "park"},
		{id: 6, at: "2024-05-07 20:15", photo: "sunset", text: t("Закат над рекой / Sunset over the river")},
		{id: 7, at: "2024-05-08 08:00", photo: "bridge", text: t("Новый мост / The new bridge ", tag("#city")), reacts: reacts(r("👍", 15), r("😍", 4))},
		{id: 8, at: "2024-05-08 09:00", reply: 7, text: t("Открытие моста — ", link("https://news.example.org/bridge-opening"))},
		{id: 9, at: "2024-05-08 23:00", fwd: scienceRU, photo: "moon", text: t("Луна этой ночью ", tag("#космос"))},
		{id: 10, at: "2024-05-09 23:30", edited: "2024-05-10 08:00", text: t("Ночной город с высоты ", tag("#город"))},
		{id: 11, at: "2024-05-10 19:00", video: true, text: t("Таймлапс / timelapse ", tag("#city"))},
		{id: 12, at: "2024-05-11 10:00", text: t("Карта маршрута: ", link("https://example.com/maps/walk-1"), " / route map")},
		{id: 13, at: "2024-05-11 12:00", photo: "sign_ru", text: t("Новые таблички на остановке / New signs at the stop ", tag("#city"))},
		{id: 14, at: "2024-05-11 12:00", photo: "sign_en"},
	}},
	{name: "Архив заметок", typ: "private_channel", id: "-1001700000004", left: true, msgs: []msg{
		{id: 1, at: "2024-04-01 10:00", service: "create_channel"},
		{id: 2, at: "2024-04-01 10:10", text: t("Заметки о проекте: ", link("https://example.org/notes/1"))},
		{id: 3, at: "2024-04-02 11:00", photo: "notebook", text: t("Черновик схемы")},
		{id: 4, at: "2024-04-03 12:00", edited: "2024-04-03 12:30", reply: 2, text: t("Дополнение: храним факты, а не состояние. ", tag("#notes"))},
	}},
}

// personal is a private chat, which the importer skips: only channels are imported.
var personal = channel{name: "Alice", typ: "personal_chat", id: 555, msgs: []msg{
	{id: 1, at: "2024-05-06 20:00", from: "Alice", text: t("Did you see the new bridge photos?")},
	{id: 2, at: "2024-05-06 20:01", from: "Alice", text: t("https://example.com/maps/walk-1")},
}}
