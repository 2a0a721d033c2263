package vision

import (
	"context"
	"fmt"
	"strings"

	"github.com/tgflow/tgflow/services/openaicompat"
)

// MaxLabels bounds the labels of one image.
const MaxLabels = 20

// Image is one image sent to a Describer.
type Image struct {
	MIME string
	Data []byte
}

// Description is what a vision provider says of one image.
type Description struct {
	Description string   `json:"description"`
	Labels      []string `json:"labels"`
	Objects     []string `json:"objects"`
	Scene       string   `json:"scene"`
	IsMeme      bool     `json:"is_meme"`
	NSFW        float64  `json:"nsfw"`
}

// Describer describes an image with a vision model. Errors follow openaicompat's classes:
// ErrUnavailable (retry the post later), ErrInvalidAnswer and ErrRejected (keep the local
// result and record the failure).
type Describer interface {
	Describe(ctx context.Context, img Image) (Description, error)
	// Name and Model name the provider in the fact.
	Name() string
	Model() string
}

// descriptionSchema is what the model must answer. Every property is required and no other
// is allowed, as strict structured outputs demand.
const descriptionSchema = `{
  "type": "object",
  "additionalProperties": false,
  "required": ["description", "labels", "objects", "scene", "is_meme", "nsfw"],
  "properties": {
    "description": {"type": "string", "maxLength": 2000},
    "labels": {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
    "objects": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
    "scene": {"type": "string", "maxLength": 200},
    "is_meme": {"type": "boolean"},
    "nsfw": {"type": "number", "minimum": 0, "maximum": 1}
  }
}`

const describeSystem = `You describe images from public Telegram channels for a search index. Answer with JSON only.
description: one or two factual sentences in the language of any text in the image, else English.
labels: up to 20 short lowercase topic labels (nouns), most specific first.
objects: the visible objects, lowercase nouns.
scene: the setting in a few words (e.g. "street protest", "screenshot of a chat", "chart").
is_meme: true when the image is a meme (a picture with a joke caption, a reaction image).
nsfw: the probability in [0, 1] that the image is not safe for work.`

// OpenAIDescriber describes images with a chat model of an OpenAI-compatible API.
type OpenAIDescriber struct {
	client *openaicompat.Client
	model  string
	schema *openaicompat.Schema
}

// NewOpenAIDescriber wraps a configured client; model is the chat model it calls (for the
// fact's Model field).
func NewOpenAIDescriber(client *openaicompat.Client, model string) (*OpenAIDescriber, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil openaicompat client", ErrConfig)
	}
	s, err := openaicompat.NewSchema("image_description", []byte(descriptionSchema))
	if err != nil {
		return nil, fmt.Errorf("vision: %w", err)
	}
	return &OpenAIDescriber{client: client, model: model, schema: s}, nil
}

// Name is the provider's label.
func (d *OpenAIDescriber) Name() string { return d.client.Name() }

// Model is the chat model.
func (d *OpenAIDescriber) Model() string { return d.model }

// Describe asks the model about one image, sent as a data URI.
func (d *OpenAIDescriber) Describe(ctx context.Context, img Image) (Description, error) {
	var out Description
	_, err := d.client.ChatJSON(ctx, openaicompat.ChatRequest{
		System: describeSystem,
		User:   "Describe this image.",
		Images: []openaicompat.Image{{MIME: img.MIME, Data: img.Data}},
		Schema: d.schema,
	}, &out)
	if err != nil {
		return Description{}, err
	}
	return normalizeDescription(out)
}

// normalizeDescription trims and lowercases labels and objects, drops empty and repeated
// ones, and checks what the schema cannot say (a description or labels must be there).
func normalizeDescription(d Description) (Description, error) {
	d.Description = strings.TrimSpace(d.Description)
	d.Scene = strings.TrimSpace(d.Scene)
	d.Labels = cleanList(d.Labels, MaxLabels)
	d.Objects = cleanList(d.Objects, 50)
	if d.Description == "" && len(d.Labels) == 0 {
		return Description{}, fmt.Errorf("%w: neither a description nor labels", openaicompat.ErrInvalidAnswer)
	}
	if d.NSFW < 0 || d.NSFW > 1 || d.NSFW != d.NSFW {
		return Description{}, fmt.Errorf("%w: nsfw %v outside [0, 1]", openaicompat.ErrInvalidAnswer, d.NSFW)
	}
	return d, nil
}

func cleanList(in []string, limit int) []string {
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.ToLower(strings.Join(strings.Fields(s), " "))
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
		if len(out) == limit {
			break
		}
	}
	return out
}
