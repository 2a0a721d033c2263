package events

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Fact types derived from posts by the pipeline stages.
const (
	TypePostVisionAnalyzed Type = "org.tgflow.post.vision.analyzed.v1"
	TypePostTagged         Type = "org.tgflow.post.tagged.v1"
	TypePostEnriched       Type = "org.tgflow.post.enriched.v1"
	TypePostEmbedded       Type = "org.tgflow.post.embedded.v1"
)

// Tagging triggers.
const (
	TriggerInitial     = "initial"
	TriggerEdit        = "edit"
	TriggerVisionRetag = "vision_retag"
)

// PostVisionAnalyzed describes the images of one post version.
type PostVisionAnalyzed struct {
	PostRef
	Rev
	Items      []VisionItem `json:"items"`
	Provider   string       `json:"provider"`
	Model      string       `json:"model,omitempty"`
	AnalyzedAt time.Time    `json:"analyzed_at"`
}

// VisionItem is the analysis of one image.
type VisionItem struct {
	MediaSHA256 string   `json:"media_sha256"`
	Description string   `json:"description,omitempty"`
	OCRText     string   `json:"ocr_text,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	PHash       string   `json:"phash,omitempty"`
	Width       int      `json:"width,omitempty"`
	Height      int      `json:"height,omitempty"`
	Error       string   `json:"error,omitempty"`
	// Reason is a machine-readable code when the image was not analysed (missing,
	// too_large, decode, limit); Error says it in words.
	Reason string `json:"reason,omitempty"`
	// Format is the decoded format: jpeg, png, gif, webp.
	Format string `json:"format,omitempty"`
	// DHash is the 64-bit difference hash as 16 hex digits (PHash is the perceptual hash).
	DHash string `json:"dhash,omitempty"`
	// Colors are the dominant colours as #rrggbb, the most frequent first.
	Colors []string `json:"colors,omitempty"`
	// OCRConfidence is the recogniser's mean word confidence in [0, 1].
	OCRConfidence float64 `json:"ocr_confidence,omitempty" jsonschema:"minimum=0,maximum=1"`
	// OCRError says why there is no OCR text (e.g. "OCR unavailable"), when that is why.
	OCRError string `json:"ocr_error,omitempty"`
	// Provider fields, set when a vision provider described the image.
	Objects []string `json:"objects,omitempty"`
	Scene   string   `json:"scene,omitempty"`
	IsMeme  bool     `json:"is_meme,omitempty"`
	// NSFW is the provider's score in [0, 1]; absent when no provider answered.
	NSFW *float64 `json:"nsfw,omitempty" jsonschema:"minimum=0,maximum=1"`
	// ProviderError says why the provider's description is missing (an invalid or rejected
	// answer); the local analysis is kept.
	ProviderError string `json:"provider_error,omitempty"`
	// NearDuplicateOf is the earlier image (in any channel) this one is a near-duplicate of.
	NearDuplicateOf *NearDuplicate `json:"near_duplicate_of,omitempty"`
}

// NearDuplicate links an image to an earlier one whose perceptual hash is within the
// Hamming distance threshold.
type NearDuplicate struct {
	PostRef
	MediaSHA256 string `json:"media_sha256"`
	// Distance is the Hamming distance of the two 64-bit pHashes (0 for the same picture).
	Distance int `json:"distance" jsonschema:"minimum=0,maximum=64"`
}

func (*PostVisionAnalyzed) EventType() Type { return TypePostVisionAnalyzed }
func (p *PostVisionAnalyzed) Validate() error {
	errs := append(p.PostRef.validate(), p.Rev.validate()...)
	if p.Provider == "" {
		errs = append(errs, errors.New("provider is empty"))
	}
	for i, it := range p.Items {
		if it.MediaSHA256 == "" {
			errs = append(errs, fmt.Errorf("items[%d]: media_sha256 is empty", i))
		}
		if it.NSFW != nil && (*it.NSFW < 0 || *it.NSFW > 1) {
			errs = append(errs, fmt.Errorf("items[%d]: nsfw %v outside [0, 1]", i, *it.NSFW))
		}
		if nd := it.NearDuplicateOf; nd != nil {
			for _, err := range nd.PostRef.validate() {
				errs = append(errs, fmt.Errorf("items[%d]: near_duplicate_of: %w", i, err))
			}
			if nd.MediaSHA256 == "" || nd.Distance < 0 || nd.Distance > 64 {
				errs = append(errs, fmt.Errorf("items[%d]: near_duplicate_of needs media_sha256 and a distance in [0, 64]", i))
			}
		}
	}
	return invalid(TypePostVisionAnalyzed, errs)
}

// Tag is one normalized tag with the tagger's confidence.
type Tag struct {
	Name  string  `json:"name"`
	Score float64 `json:"score,omitempty" jsonschema:"minimum=0,maximum=1"`
}

// PostTagged carries 1–5 normalized tags of one post revision, and what the downstream
// stages need of the post (text, links, time) so that they read only this fact.
type PostTagged struct {
	PostRef
	Rev
	Trigger string `json:"trigger" jsonschema:"enum=initial,enum=edit,enum=vision_retag"`
	Tags    []Tag  `json:"tags"`
	// Topics chosen by a chat provider from the configured list, when TopicsSource is set
	// (TGFLOW_TAGGER=openai); the embedder passes them on instead of computing its own.
	// The local tagger sets neither (facts before topics moved to the embedder may carry
	// Topics without a source: they are ignored).
	Topics          []string  `json:"topics,omitempty"`
	TopicsSource    string    `json:"topics_source,omitempty"`
	ChannelUsername string    `json:"channel_username,omitempty"`
	PostedAt        time.Time `json:"posted_at"`
	Text            string    `json:"text,omitempty"`
	Links           []string  `json:"links,omitempty"`
	// Vision is what the post's images say (descriptions and OCR text), bounded; set on the
	// vision_retag revision so that enrich and embed see it.
	Vision   string `json:"vision,omitempty"`
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
}

func (*PostTagged) EventType() Type { return TypePostTagged }
func (p *PostTagged) Validate() error {
	errs := append(p.PostRef.validate(), p.Rev.validate()...)
	switch p.Trigger {
	case TriggerInitial, TriggerEdit, TriggerVisionRetag:
	default:
		errs = append(errs, fmt.Errorf("trigger %q is not one of initial, edit, vision_retag", p.Trigger))
	}
	if len(p.Tags) > 5 {
		errs = append(errs, fmt.Errorf("%d tags, at most 5", len(p.Tags)))
	}
	for i, t := range p.Tags {
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("tags[%d]: name is empty", i))
		}
	}
	if p.PostedAt.IsZero() {
		errs = append(errs, errors.New("posted_at is zero"))
	}
	if p.Provider == "" {
		errs = append(errs, errors.New("provider is empty"))
	}
	errs = append(errs, validateTopics(p.Topics, p.TopicsSource, false)...)
	return invalid(TypePostTagged, errs)
}

// Page is one linked page the enricher fetched (or failed to fetch: Error says why).
type Page struct {
	URL           string    `json:"url"`
	FinalURL      string    `json:"final_url,omitempty"`
	Domain        string    `json:"domain"`
	Status        int       `json:"status,omitempty"`
	Title         string    `json:"title,omitempty"`
	Site          string    `json:"site,omitempty"`
	Byline        string    `json:"byline,omitempty"`
	Excerpt       string    `json:"excerpt,omitempty"`
	Text          string    `json:"text,omitempty"`
	WordCount     int       `json:"word_count,omitempty"`
	Lang          string    `json:"lang,omitempty"`
	ContentSHA256 string    `json:"content_sha256,omitempty"`
	FetchedAt     time.Time `json:"fetched_at,omitzero"`
	// Reason is a machine-readable code when the page was skipped or failed (policy,
	// telegram, robots, ssrf, dns, timeout, too_large, content_type, http_status, redirects,
	// network); Error says it in words.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// PostEnriched is exactly one per tagged revision: the post with its linked pages.
type PostEnriched struct {
	PostRef
	Rev
	Tags []string `json:"tags"`
	// Topics and TopicsSource are the tagged revision's (a chat provider's choice), passed on.
	Topics          []string  `json:"topics,omitempty"`
	TopicsSource    string    `json:"topics_source,omitempty"`
	ChannelUsername string    `json:"channel_username,omitempty"`
	PostedAt        time.Time `json:"posted_at"`
	Text            string    `json:"text,omitempty"`
	Vision          string    `json:"vision,omitempty"`
	Pages           []Page    `json:"pages,omitempty"`
}

func (*PostEnriched) EventType() Type { return TypePostEnriched }
func (p *PostEnriched) Validate() error {
	errs := append(p.PostRef.validate(), p.Rev.validate()...)
	if p.PostedAt.IsZero() {
		errs = append(errs, errors.New("posted_at is zero"))
	}
	for i, pg := range p.Pages {
		if pg.URL == "" || pg.Domain == "" {
			errs = append(errs, fmt.Errorf("pages[%d]: url and domain are required", i))
		}
	}
	errs = append(errs, validateTopics(p.Topics, p.TopicsSource, false)...)
	return invalid(TypePostEnriched, errs)
}

// PostEmbedded is one vector per post revision.
type PostEmbedded struct {
	PostRef
	Rev
	Vector   []float32 `json:"vector"`
	Provider string    `json:"provider"`
	Model    string    `json:"model,omitempty"`
	// EmbedderVersion and Dim complete the vector space's name (embed.Info): vectors are
	// comparable only within one (provider, model, embedder version, dim). Not "version":
	// that key is the revision's content version (Rev), which orders the facts of a post.
	EmbedderVersion string `json:"embedder_version,omitempty"`
	Dim             int    `json:"dim,omitempty"`
	Lexical         bool   `json:"lexical,omitempty"`
	InputSHA256     string `json:"input_sha256,omitempty"`
	// Topics are the post's topics (names from the configured list, best first): the read
	// models take them from here only. TopicsSource says who chose them: "tagger:<provider>/<model>"
	// (a chat provider's choice, passed on) or "embedding:<vector space>" (cosine of Vector to
	// the topic descriptions, computed by the embedder). An empty list with a source is a
	// result: the post is about none of the topics.
	Topics       []string `json:"topics,omitempty" jsonschema:"maxItems=10"`
	TopicsSource string   `json:"topics_source,omitempty"`
}

func (*PostEmbedded) EventType() Type { return TypePostEmbedded }
func (p *PostEmbedded) Validate() error {
	errs := append(p.PostRef.validate(), p.Rev.validate()...)
	if len(p.Vector) == 0 {
		errs = append(errs, errors.New("vector is empty"))
	}
	if p.Dim != 0 && p.Dim != len(p.Vector) {
		errs = append(errs, fmt.Errorf("dim %d but the vector has %d components", p.Dim, len(p.Vector)))
	}
	if p.Provider == "" {
		errs = append(errs, errors.New("provider is empty"))
	}
	errs = append(errs, validateTopics(p.Topics, p.TopicsSource, true)...)
	return invalid(TypePostEmbedded, errs)
}

// MaxTopics bounds the topics of one post.
const MaxTopics = 10

// Prefixes of a TopicsSource: who chose a post's topics.
const (
	TopicsFromTagger    = "tagger:"
	TopicsFromEmbedding = "embedding:"
)

// validateTopics checks a post's topic list: non-empty distinct names, at most MaxTopics,
// and a source naming who chose them (strict: the source must be one of the known kinds).
func validateTopics(topics []string, source string, strict bool) []error {
	var errs []error
	if len(topics) > MaxTopics {
		errs = append(errs, fmt.Errorf("%d topics, at most %d", len(topics), MaxTopics))
	}
	seen := make(map[string]bool, len(topics))
	for i, t := range topics {
		switch {
		case t == "":
			errs = append(errs, fmt.Errorf("topics[%d]: name is empty", i))
		case seen[t]:
			errs = append(errs, fmt.Errorf("topics[%d]: %q is repeated", i, t))
		}
		seen[t] = true
	}
	if strict && len(topics) > 0 && source == "" {
		errs = append(errs, errors.New("topics without a topics_source"))
	}
	if source != "" && !strings.HasPrefix(source, TopicsFromTagger) && !strings.HasPrefix(source, TopicsFromEmbedding) {
		errs = append(errs, fmt.Errorf("topics_source %q is neither %q… nor %q…", source, TopicsFromTagger, TopicsFromEmbedding))
	}
	return errs
}
