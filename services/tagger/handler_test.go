package tagger_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
	"github.com/tgflow/tgflow/services/tagger"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const (
	goPost = "Вышел Go 1.26: новые итераторы, улучшения в стандартной библиотеке и опциональная телеметрия. " +
		"Команда Go рекомендует обновиться всем разработчикам. Подробности: https://Go.dev/blog/go1.26?utm_source=tg#notes"
	editedPost = "Вышел Go 1.26.1: исправлены уязвимости в пакете crypto/tls и в компиляторе. Обновитесь как можно скорее, патч уже доступен."
	catPost    = "Наш кот Барсик сегодня весь день спал на подоконнике и смотрел на голубей за окном."
	ocrText    = "КВАНТОВЫЙ ПРОЦЕССОР квантовый процессор квантовый компьютер кубиты"
)

const channel events.ChannelID = 1001

// localEngine is the local tagger over an empty DF.
func localEngine(t testing.TB) *tagger.Tagger {
	t.Helper()
	tg, err := tagger.New(tagger.Config{}, tagger.NewMemoryDF())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func mkPost(msg int64, text string, media bool) events.Post {
	p := events.Post{PostRef: events.PostRef{ChannelID: channel, MessageID: msg}, ChannelUsername: "gonews",
		Date: t0.Add(time.Duration(msg) * time.Minute), Text: text}
	if media {
		p.Media = []events.Media{{Kind: events.MediaPhoto, SHA256: "ab12"}}
	}
	return p
}

func parsedEv(msg int64, text string, media bool) events.Event {
	return events.PostEvent(&events.PostParsed{Post: mkPost(msg, text, media)})
}

func editedEv(msg int64, version int64, text string, media bool) events.Event {
	p := mkPost(msg, text, media)
	p.EditDate = version
	return events.New(events.ProducerIngest, &events.PostEdited{Post: p}, t0, "edit", "1")
}

func visionEv(msg int64, version int64, items ...events.VisionItem) events.Event {
	p := &events.PostVisionAnalyzed{PostRef: events.PostRef{ChannelID: channel, MessageID: msg}, Rev: events.Rev{Version: version},
		Items: items, Provider: "local", AnalyzedAt: t0}
	return events.New(events.ProducerVision, p, t0, "v")
}

func deletedEv(msg int64) events.Event {
	return events.New(events.ProducerIngest, &events.PostDeleted{PostRef: events.PostRef{ChannelID: channel, MessageID: msg}, DeletedAt: t0}, t0)
}

func ocrItem(text string) events.VisionItem {
	return events.VisionItem{MediaSHA256: "ab12", OCRText: text, Description: "фотография слайда"}
}

func newHandler(t testing.TB) *tagger.Handler {
	t.Helper()
	h, err := tagger.NewHandler(localEngine(t), tagger.NewMemoryPosts())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func pipeline(t testing.TB, h *tagger.Handler) *worker.Pipeline {
	t.Helper()
	p, err := worker.NewPipeline(topology.ConsumerTagger, h.Router(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// one handles in and returns its only posts.tagged (nil when there is none).
func one(t *testing.T, p *worker.Pipeline, in events.Event) *events.PostTagged {
	t.Helper()
	out, err := p.Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("%s %s: %v", in.Type, in.Subject, err)
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0].Data.(*events.PostTagged)
	}
	t.Fatalf("%s %s: %d outputs, want at most one", in.Type, in.Subject, len(out))
	return nil
}

func tagNames(p *events.PostTagged) []string {
	var out []string
	for _, tg := range p.Tags {
		out = append(out, tg.Name)
	}
	return out
}

func TestStageContract(t *testing.T) {
	inputs := []events.Event{
		parsedEv(1, goPost, true),
		parsedEv(2, "ок", false), // short: hashtags only, an empty list
		editedEv(1, 1700000000, editedPost, true),
		visionEv(1, 0, ocrItem(ocrText)),
	}
	if tagger.ReadsDeletions() {
		inputs = append(inputs, deletedEv(3))
	}
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerTagger,
		Router:   func(t *testing.T) *worker.Router { return newHandler(t).Router() },
		Inputs:   inputs,
	})
}

func TestHandlerOutputs(t *testing.T) {
	h := newHandler(t)
	p := pipeline(t, h)

	first := one(t, p, parsedEv(1, goPost, true))
	if first == nil {
		t.Fatal("posts.parsed yields no posts.tagged")
	}
	if tags := tagNames(first); !slices.Contains(tags, "go") && !slices.Contains(tags, "golang") {
		t.Errorf("the Go release post is tagged %q, without go or golang", tags)
	}
	if first.Trigger != events.TriggerInitial || first.Rev != (events.Rev{}) {
		t.Errorf("initial: trigger %q rev %+v", first.Trigger, first.Rev)
	}
	if want := []string{"https://go.dev/blog/go1.26"}; !slices.Equal(first.Links, want) {
		t.Errorf("links %q, want %q (normalised: host case, utm_*, fragment)", first.Links, want)
	}
	if first.ChannelUsername != "gonews" || !first.PostedAt.Equal(t0.Add(time.Minute)) || first.Text != goPost {
		t.Errorf("post attributes not carried: %q %s %q", first.ChannelUsername, first.PostedAt, first.Text)
	}
	if first.Provider != tagger.Provider || first.Model != tagger.Model {
		t.Errorf("provider %q model %q", first.Provider, first.Model)
	}
	if first.Vision != "" {
		t.Errorf("the text revision has vision text %q", first.Vision)
	}
	if len(first.Topics) != 0 || first.TopicsSource != "" {
		t.Errorf("topics %q from %q: the local tagger gives none (the embedder does)", first.Topics, first.TopicsSource)
	}

	edit := one(t, p, editedEv(1, 1700000000, editedPost, true))
	if edit == nil || edit.Trigger != events.TriggerEdit || edit.Rev != (events.Rev{Version: 1700000000}) {
		t.Fatalf("edit: %+v", edit)
	}
	if edit.Text != editedPost || !slices.Contains(tagNames(edit), "уязвимости") && !slices.Contains(tagNames(edit), "crypto") {
		t.Errorf("edit tags %q do not come from the new text", tagNames(edit))
	}

	vis := one(t, p, visionEv(1, 0, ocrItem(ocrText)))
	if vis == nil {
		t.Fatal("a vision result with OCR text yields no posts.tagged")
	}
	if vis.Trigger != events.TriggerVisionRetag || vis.Rev != (events.Rev{Version: 1700000000, Revision: 1}) {
		t.Errorf("vision: trigger %q rev %+v, want vision_retag of the latest version, revision 1", vis.Trigger, vis.Rev)
	}
	if !strings.Contains(vis.Vision, "КВАНТОВЫЙ ПРОЦЕССОР") || !strings.Contains(vis.Vision, "фотография слайда") {
		t.Errorf("vision text %q lacks the OCR text or the description", vis.Vision)
	}
	if tags := tagNames(vis); !slices.ContainsFunc(tags, func(s string) bool {
		return strings.HasPrefix(s, "квантов") || strings.HasPrefix(s, "процессор")
	}) {
		t.Errorf("vision_retag tags %q: the OCR words do not influence them (edit tags were %q)", tags, tagNames(edit))
	}
	if vis.Text != editedPost {
		t.Errorf("vision_retag carries text %q, want the latest version's", vis.Text)
	}

	// Once the images are described, a later version keeps their words: revision 1.
	again := one(t, p, editedEv(1, 1700000500, editedPost+" Дополнено.", true))
	if again == nil || again.Rev != (events.Rev{Version: 1700000500, Revision: 1}) || again.Vision != vis.Vision {
		t.Errorf("edit after vision: %+v", again)
	}
}

func TestVisionEdgeCases(t *testing.T) {
	t.Run("no words yields nothing", func(t *testing.T) {
		p := pipeline(t, newHandler(t))
		one(t, p, parsedEv(1, goPost, true))
		if out := one(t, p, visionEv(1, 0, events.VisionItem{MediaSHA256: "ab12", PHash: "ff"})); out != nil {
			t.Errorf("a vision result without words yields %+v", out)
		}
	})
	t.Run("unseen post is transient", func(t *testing.T) {
		p := pipeline(t, newHandler(t))
		_, err := p.Handle(context.Background(), visionEv(9, 0, ocrItem(ocrText)))
		if !errors.Is(err, tagger.ErrPostUnseen) || worker.Classify(err) != worker.ClassTransient {
			t.Errorf("vision for an unseen post: %v (class %s), want transient ErrPostUnseen", err, worker.Classify(err))
		}
	})
	t.Run("redelivered parsed after an edit keeps the edit", func(t *testing.T) {
		p := pipeline(t, newHandler(t))
		one(t, p, parsedEv(1, goPost, true))
		one(t, p, editedEv(1, 1700000000, editedPost, true))
		old := one(t, p, parsedEv(1, goPost, true))
		if old == nil || old.Rev != (events.Rev{}) || old.Text != goPost {
			t.Errorf("redelivered parsed: %+v", old)
		}
		vis := one(t, p, visionEv(1, 0, ocrItem(ocrText)))
		if vis == nil || vis.Text != editedPost || vis.Rev.Version != 1700000000 {
			t.Errorf("vision after a redelivered parsed: %+v, want the edited version", vis)
		}
	})
}

// TestDeletedPostIsNotTagged calls the deletion handler directly, whether or not the
// topology delivers posts.deleted yet.
func TestDeletedPostIsNotTagged(t *testing.T) {
	h := newHandler(t)
	p := pipeline(t, h)
	one(t, p, parsedEv(1, goPost, true))
	ctx := worker.WithProducer(context.Background(), events.ProducerTagger)
	del := deletedEv(1)
	out, err := h.Deleted(ctx, del, del.Data.(*events.PostDeleted))
	if err != nil || len(out) != 0 {
		t.Fatalf("deleted: %v %v", out, err)
	}
	for _, in := range []events.Event{visionEv(1, 0, ocrItem(ocrText)), editedEv(1, 1700000000, editedPost, true), parsedEv(1, goPost, true)} {
		if got := one(t, p, in); got != nil {
			t.Errorf("%s of a deleted post yields %+v", in.Type, got)
		}
	}
}

func TestVisionTextIsBounded(t *testing.T) {
	long := strings.Repeat("слово ", 400)
	got := tagger.VisionText([]events.VisionItem{{MediaSHA256: "a", Description: "кот на  окне"}, {MediaSHA256: "b", OCRText: long}, {MediaSHA256: "c", OCRText: "хвост"}})
	total := utf8.RuneCountInString(strings.Join(got, "\n"))
	if total > tagger.MaxVisionRunes || total < tagger.MaxVisionRunes-10 {
		t.Errorf("vision text of %d runes, want at most (and close to) %d", total, tagger.MaxVisionRunes)
	}
	if got[0] != "кот на окне" {
		t.Errorf("first item %q, want the description with whitespace collapsed", got[0])
	}
	for _, s := range got {
		if strings.HasSuffix(s, "сл") || strings.HasSuffix(s, "слов") {
			t.Errorf("cut inside a word: …%q", s[max(0, len(s)-20):])
		}
	}
}
