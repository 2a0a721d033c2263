package tagger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

// Engine computes a post's tags (and, a chat model, its topics): the local *Tagger, or a
// *ChatTagger.
type Engine interface {
	Tag(ctx context.Context, in Input) (Result, error)
}

// MaxVisionRunes bounds what the images of a post add to it (descriptions and OCR text):
// both what the tagger reads and PostTagged.Vision.
const MaxVisionRunes = 1000

// ErrPostUnseen marks a vision result for a post whose text the stage has not handled yet
// (its posts.parsed is still being retried): transient, the result is redelivered later.
var ErrPostUnseen = errors.New("tagger: the post of this vision result has not been tagged yet")

// Handler is the tagger stage without NATS: posts.parsed (trigger initial), posts.edited
// (edit) and posts.vision.analyzed (vision_retag) in, one posts.tagged per post revision out;
// posts.deleted (when the topology delivers it) marks a post so that it is tagged no more.
//
// What a vision result needs of its post (text, links, date) is kept in a PostStore, written
// when the post's parsed or edited fact is handled: the store holds the latest version of
// every post that has media or was edited (a first version without media is only read, see
// remember), its vision words and whether it was deleted. Every handler reads and writes
// it in one compare-and-set, so a deletion is never overtaken by a concurrent tagging.
type Handler struct {
	engine Engine
	posts  PostStore
	now    func() time.Time
}

// NewHandler tags with engine and keeps post state in posts.
func NewHandler(engine Engine, posts PostStore) (*Handler, error) {
	if engine == nil || posts == nil {
		return nil, fmt.Errorf("%w: engine or post store", ErrNilDependency)
	}
	return &Handler{engine: engine, posts: posts, now: time.Now}, nil
}

// ReadsDeletions reports whether the topology's tagger consumer delivers posts.deleted.
func ReadsDeletions() bool {
	c, ok := topology.LookupConsumer(topology.ConsumerTagger)
	return ok && slices.Contains(c.Inputs, events.TypePostDeleted)
}

// Router is the stage's router. mws wrap the handlers that call the engine (a provider's
// circuit breaker); the deletion handler, registered when the topology delivers
// posts.deleted, calls no provider.
func (h *Handler) Router(mws ...worker.Middleware) *worker.Router {
	r := worker.NewRouter()
	worker.On(r, h.Parsed, mws...)
	worker.On(r, h.Edited, mws...)
	worker.On(r, h.VisionAnalyzed, mws...)
	if ReadsDeletions() {
		worker.On(r, h.Deleted)
	}
	return r
}

// recordOf is the record of a post version, keeping what the stored record knows of the
// post's images.
func recordOf(p *events.Post, prev *PostRecord) *PostRecord {
	r := &PostRecord{
		Version: p.Version(), Seen: true, ChannelUsername: p.ChannelUsername, Date: p.Date,
		Text: p.Text, Entities: p.Entities, Hashtags: p.Hashtags, Links: p.Links, HasMedia: len(p.Media) > 0,
	}
	if prev != nil {
		r.VisionText = prev.VisionText
	}
	return r
}

// remember stores p as the post's latest version unless a newer one is stored, and returns
// the record as stored (or, when nothing is stored, p's own), or nil when the post was
// deleted.
//
// A post's first version without media is read, not written, when nothing is stored of it:
// the record serves a vision result (a post without media gets none; an edit may add media,
// and edits are always written) and the deletion, which writes its own record. This saves a
// write of the post's text to the bucket for most posts; a deletion or edit stored before is
// still seen, as the read and the compare-and-set are the same.
func (h *Handler) remember(ctx context.Context, p *events.Post, trigger string) (*PostRecord, error) {
	keep := trigger != events.TriggerInitial || len(p.Media) > 0
	stored := false
	rec, err := h.posts.Update(ctx, p.Key(), func(cur *PostRecord) (*PostRecord, bool) {
		stored = cur != nil // set on every call: the store may call fn more than once
		switch {
		case cur != nil && cur.Deleted:
			return cur, false
		case cur != nil && cur.Seen && cur.Version >= p.Version():
			return cur, false // a redelivery, or an older version after a newer one
		case cur == nil && !keep:
			return nil, false // nothing stored, nothing worth storing
		}
		return recordOf(p, cur), true
	})
	if err != nil {
		return nil, err
	}
	if rec == nil && !stored && !keep {
		return recordOf(p, nil), nil
	}
	if rec == nil || rec.Deleted {
		return nil, nil
	}
	return rec, nil
}

// Parsed tags a post seen for the first time.
func (h *Handler) Parsed(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
	return h.post(ctx, in, &p.Post, events.TriggerInitial)
}

// Edited tags a new version of a post.
func (h *Handler) Edited(ctx context.Context, in events.Event, p *events.PostEdited) ([]events.Event, error) {
	return h.post(ctx, in, &p.Post, events.TriggerEdit)
}

// post tags one version of a post from its own fact. When the post's images were already
// described, their words are part of the version (revision 1, as after a vision result).
func (h *Handler) post(ctx context.Context, in events.Event, p *events.Post, trigger string) ([]events.Event, error) {
	rec, err := h.remember(ctx, p, trigger)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, nil // deleted: not tagged
	}
	var vision []string
	if len(p.Media) > 0 {
		vision = rec.VisionText
	}
	return h.tag(ctx, in, p.PostRef, recordOf(p, nil), vision, trigger)
}

// VisionAnalyzed re-tags a post with what its images say: a revision 1 of the latest version
// the stage knows. A result without words (no description, no OCR text) changes nothing the
// tagger reads and yields nothing; so does one for a deleted post.
func (h *Handler) VisionAnalyzed(ctx context.Context, in events.Event, p *events.PostVisionAnalyzed) ([]events.Event, error) {
	vision := VisionText(p.Items)
	unseen := false
	rec, err := h.posts.Update(ctx, p.Key(), func(cur *PostRecord) (*PostRecord, bool) {
		unseen = cur == nil // set on every call: the store may call fn more than once
		if cur == nil || cur.Deleted {
			return cur, false
		}
		if len(vision) == 0 || slices.Equal(cur.VisionText, vision) {
			return cur, false
		}
		r := *cur
		r.VisionText = vision
		return &r, true
	})
	switch {
	case err != nil:
		return nil, err
	case unseen:
		return nil, fmt.Errorf("%w: %s", ErrPostUnseen, p.Key())
	case rec == nil || rec.Deleted || len(vision) == 0:
		return nil, nil
	}
	return h.tag(ctx, in, p.PostRef, rec, vision, events.TriggerVisionRetag)
}

// Deleted remembers that a post is gone: later facts of it are not tagged.
func (h *Handler) Deleted(ctx context.Context, _ events.Event, p *events.PostDeleted) ([]events.Event, error) {
	_, err := h.posts.Update(ctx, p.Key(), func(cur *PostRecord) (*PostRecord, bool) {
		if cur != nil && cur.Deleted {
			return cur, false
		}
		// What was kept of the post is dropped: nothing will read it again.
		return &PostRecord{Deleted: true}, true
	})
	return nil, err
}

// tag computes the posts.tagged of one post revision.
func (h *Handler) tag(ctx context.Context, in events.Event, ref events.PostRef, rec *PostRecord, vision []string, trigger string) ([]events.Event, error) {
	res, err := h.engine.Tag(ctx, Input{Text: rec.Text, Entities: rec.Entities, Hashtags: rec.Hashtags, HasMedia: rec.HasMedia, VisionText: vision})
	if err != nil {
		return nil, err
	}
	tags := res.Tags
	if tags == nil {
		tags = []events.Tag{} // an empty tag list is a result
	}
	rev := events.Rev{Version: rec.Version}
	if len(vision) > 0 {
		rev.Revision = 1
	}
	out := &events.PostTagged{
		PostRef:         ref,
		Rev:             rev,
		Trigger:         trigger,
		Tags:            tags,
		Topics:          res.Topics,
		TopicsSource:    res.TopicsSource,
		ChannelUsername: rec.ChannelUsername,
		PostedAt:        rec.Date,
		Text:            rec.Text,
		Links:           events.ExtractLinks(rec.Text, rec.Entities, rec.Links...),
		Vision:          strings.Join(vision, "\n"),
		Provider:        res.Provider,
		Model:           res.Model,
	}
	return []events.Event{worker.Derive(ctx, in, out, h.now())}, nil
}

// VisionText is what a post's images say, for the tagger and PostTagged.Vision: each item's
// description and OCR text, whitespace collapsed, in order, without repeats, at most
// MaxVisionRunes in all (cut at a word boundary).
func VisionText(items []events.VisionItem) []string {
	var out []string
	left := MaxVisionRunes
	for _, it := range items {
		for _, s := range []string{it.Description, it.OCRText} {
			s = strings.Join(strings.Fields(s), " ")
			if s == "" || slices.Contains(out, s) {
				continue
			}
			if left <= 0 {
				return out
			}
			if utf8.RuneCountInString(s) > left {
				s = cutWords(s, left)
				if s == "" {
					return out
				}
			}
			out = append(out, s)
			left -= utf8.RuneCountInString(s) + 1 // the joining newline
		}
	}
	return out
}

// cutWords returns the longest prefix of s of at most n runes that ends at a word boundary
// (or n runes of it when its first word is longer).
func cutWords(s string, n int) string {
	runes := []rune(s)
	if len(runes) <= n {
		return s
	}
	cut := n
	for cut > 0 && !unicode.IsSpace(runes[cut]) {
		cut--
	}
	if cut == 0 {
		cut = n
	}
	return strings.TrimSpace(string(runes[:cut]))
}
