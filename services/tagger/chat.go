package tagger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// maxPromptRunes bounds the post text sent to the chat model.
const maxPromptRunes = 4000

// ChatTagger takes tags and topics from an OpenAI-compatible chat model, asked for JSON valid
// against a schema (at most 5 tags; topics only from the configured list, an enum), and
// falls back to the local tagger when the answer is invalid or the request is rejected (the
// local result has no topics: the embedder then computes them from the post's vector). A
// text the local rules call short (no media, under Config.ShortTextRunes) gets the local
// result (its hashtags) without a call. A provider that cannot answer (ErrUnavailable) is
// an error: the stage retries later, its circuit breaker holding the inputs meanwhile.
type ChatTagger struct {
	client    *openaicompat.Client
	local     *Tagger
	schema    *openaicompat.Schema
	system    string
	topics    []string
	maxTopics int
	model     string
	source    string
	log       *slog.Logger
}

// NewChatTagger asks client's chat model (named model in posts.tagged) for tags and for at
// most maxTopics topics of list, and falls back to local, whose configuration (tag count,
// short text) it shares.
func NewChatTagger(client *openaicompat.Client, model string, local *Tagger, list []topics.Topic, maxTopics int, log *slog.Logger) (*ChatTagger, error) {
	if client == nil || local == nil {
		return nil, fmt.Errorf("%w: chat client or local tagger", ErrNilDependency)
	}
	if err := topics.Validate(list); err != nil {
		return nil, err
	}
	if maxTopics < 0 || maxTopics > events.MaxTopics {
		return nil, fmt.Errorf("%w: max topics %d outside [0, %d]", ErrConfig, maxTopics, events.MaxTopics)
	}
	if log == nil {
		log = slog.Default()
	}
	cfg := local.Config()
	names := topics.Names(list)
	var desc strings.Builder
	for _, t := range list {
		fmt.Fprintf(&desc, "- %s: %s\n", t.Name, firstNonEmpty(t.EN, t.RU))
	}
	schema, err := openaicompat.NewSchema("post_tags", chatSchema(cfg.MaxTags, maxTopics, names))
	if err != nil {
		return nil, fmt.Errorf("tagger: %w", err)
	}
	system := fmt.Sprintf(`You tag posts of Telegram channels (mostly Russian and English).
Answer with JSON: "tags" — 0 to %d short keywords naming what the post is about (products, technologies, people, places, events; lower case; in the post's language; the post's own hashtags first, without '#'); "topics" — 0 to %d topics from this list, most relevant first, only when the post is clearly about them:
%s`, cfg.MaxTags, maxTopics, desc.String())
	return &ChatTagger{client: client, local: local, schema: schema, system: system, topics: names, maxTopics: maxTopics,
		model: model, source: events.TopicsFromTagger + client.Name() + "/" + model, log: log}, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// chatSchema is the answer's JSON Schema. With strict structured outputs every property is
// required, no other is allowed, and string length keywords are not supported (NormalizeTag
// drops empty and overlong tags).
func chatSchema(maxTags, maxTopics int, topics []string) []byte {
	topicItems := map[string]any{"type": "string"}
	if len(topics) > 0 {
		topicItems["enum"] = topics
	}
	doc := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"tags", "topics"},
		"properties": map[string]any{
			"tags": map[string]any{"type": "array", "maxItems": maxTags,
				"items": map[string]any{"type": "string"}},
			"topics": map[string]any{"type": "array", "maxItems": maxTopics, "items": topicItems},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("tagger: chat schema: %v", err)) // a literal map of strings and ints
	}
	return b
}

type chatAnswer struct {
	Tags   []string `json:"tags"`
	Topics []string `json:"topics"`
}

// Tag implements Engine.
func (c *ChatTagger) Tag(ctx context.Context, in Input) (Result, error) {
	if c.local.short(in) {
		return c.local.Tag(ctx, in)
	}
	var ans chatAnswer
	_, err := c.client.ChatJSON(ctx, openaicompat.ChatRequest{System: c.system, User: prompt(in), Schema: c.schema}, &ans)
	if err == nil {
		res, verr := c.result(ans)
		if verr == nil {
			return res, nil
		}
		err = fmt.Errorf("%w: %w", openaicompat.ErrInvalidAnswer, verr)
	}
	if errors.Is(err, openaicompat.ErrInvalidAnswer) || errors.Is(err, openaicompat.ErrRejected) {
		c.log.WarnContext(ctx, "chat tagger: falling back to the local tagger", "provider", c.client.Name(), "err", err)
		return c.local.Tag(ctx, in)
	}
	return Result{}, fmt.Errorf("tagger: chat: %w", err)
}

// ErrAnswer marks a chat answer that is valid JSON but not usable.
var ErrAnswer = errors.New("tagger: unusable chat answer")

// result normalises an answer: tags by NormalizeTag, deduplicated, at most MaxTags; topics
// from the list only, deduplicated, named as the chat model's choice (an empty choice is a
// choice: the embedder passes it on). An answer with tags none of which survive is unusable.
func (c *ChatTagger) result(ans chatAnswer) (Result, error) {
	maxTags := c.local.Config().MaxTags
	res := Result{Tags: []events.Tag{}, Provider: c.client.Name(), Model: c.model, TopicsSource: c.source}
	for _, t := range ans.Tags {
		n := NormalizeTag(t)
		if n == "" || slices.ContainsFunc(res.Tags, func(x events.Tag) bool { return x.Name == n }) {
			continue
		}
		if len(res.Tags) < maxTags {
			res.Tags = append(res.Tags, events.Tag{Name: n})
		}
	}
	if len(ans.Tags) > 0 && len(res.Tags) == 0 {
		return Result{}, fmt.Errorf("%w: none of %d tags is a tag", ErrAnswer, len(ans.Tags))
	}
	for _, t := range ans.Topics {
		if !slices.Contains(c.topics, t) {
			return Result{}, fmt.Errorf("%w: topic %q is not in the list", ErrAnswer, t)
		}
		if !slices.Contains(res.Topics, t) && len(res.Topics) < c.maxTopics {
			res.Topics = append(res.Topics, t)
		}
	}
	return res, nil
}

// prompt is the user message: the post's text (bounded), its hashtags and its images' words.
func prompt(in Input) string {
	var b strings.Builder
	b.WriteString("Post:\n")
	b.WriteString(truncateRunes(in.Text, maxPromptRunes))
	if len(in.Hashtags) > 0 {
		b.WriteString("\n\nHashtags: ")
		b.WriteString(strings.Join(in.Hashtags, ", "))
	}
	if len(in.VisionText) > 0 {
		b.WriteString("\n\nIts images show / read:\n")
		b.WriteString(strings.Join(in.VisionText, "\n"))
	}
	return b.String()
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
