package openaicompat

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is a JSON Schema that structured answers must satisfy, compiled once.
type Schema struct {
	name     string
	raw      map[string]any
	compiled *jsonschema.Schema
}

var schemaName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// NewSchema compiles a JSON Schema document. name is sent to the provider (letters,
// digits, _ and -, at most 64).
func NewSchema(name string, doc []byte) (*Schema, error) {
	if !schemaName.MatchString(name) {
		return nil, fmt.Errorf("schema name %q: letters, digits, _ and - only, at most 64", name)
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	url := "mem://tgflow/" + name + ".json"
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource(url, parsed); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	compiled, err := comp.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	return &Schema{name: name, raw: raw, compiled: compiled}, nil
}

// Validate checks a JSON document against the schema.
func (s *Schema) Validate(doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.compiled.Validate(v)
}

// Image is one image sent with a chat request, as a data URI.
type Image struct {
	MIME string // image/jpeg, image/png, image/gif, image/webp
	Data []byte
}

// ChatRequest asks for one structured answer.
type ChatRequest struct {
	System string
	User   string
	Images []Image
	Schema *Schema
	// MaxTokens bounds the answer (0: the provider's default).
	MaxTokens int
}

// Usage is what a call cost.
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens int64
}

// ChatJSON asks the chat model and decodes its answer into out after validating it against
// req.Schema. An answer that is not valid is ErrInvalidAnswer (with the validation error,
// never the answer itself, which may quote the post).
func (c *Client) ChatJSON(ctx context.Context, req ChatRequest, out any) (Usage, error) {
	if c.cfg.ChatModel == "" {
		return Usage{}, fmt.Errorf("%w: TGFLOW_OPENAI_CHAT_MODEL is not set", ErrNotConfigured)
	}
	if req.Schema == nil {
		return Usage{}, errors.New("openaicompat: ChatJSON needs a schema")
	}
	params := openai.ChatCompletionNewParams{
		Model:    shared.ChatModel(c.cfg.ChatModel),
		Messages: messages(req),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name:   req.Schema.name,
					Schema: req.Schema.raw,
					Strict: openai.Bool(true),
				},
			},
		},
		Temperature: openai.Float(0),
	}
	if req.MaxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
	}
	var usage Usage
	var answer string
	err := c.call(ctx, "chat", func(ctx context.Context) (int64, error) {
		resp, err := c.api.Chat.Completions.New(ctx, params)
		if err != nil {
			return 0, err
		}
		usage = Usage{resp.Usage.PromptTokens, resp.Usage.CompletionTokens, resp.Usage.TotalTokens}
		if len(resp.Choices) == 0 {
			return usage.TotalTokens, fmt.Errorf("%w: no choices", ErrInvalidAnswer)
		}
		msg := resp.Choices[0].Message
		if msg.Refusal != "" {
			return usage.TotalTokens, fmt.Errorf("%w: the model refused", ErrInvalidAnswer)
		}
		answer = stripFence(msg.Content)
		if err := req.Schema.Validate([]byte(answer)); err != nil {
			return usage.TotalTokens, fmt.Errorf("%w: %v", ErrInvalidAnswer, err)
		}
		return usage.TotalTokens, nil
	})
	if err != nil {
		return usage, err
	}
	if err := json.Unmarshal([]byte(answer), out); err != nil {
		return usage, fmt.Errorf("%w: %v", ErrInvalidAnswer, err)
	}
	return usage, nil
}

func messages(req ChatRequest) []openai.ChatCompletionMessageParamUnion {
	var msgs []openai.ChatCompletionMessageParamUnion
	if req.System != "" {
		msgs = append(msgs, openai.SystemMessage(req.System))
	}
	if len(req.Images) == 0 {
		return append(msgs, openai.UserMessage(req.User))
	}
	parts := []openai.ChatCompletionContentPartUnionParam{openai.TextContentPart(req.User)}
	for _, im := range req.Images {
		uri := "data:" + im.MIME + ";base64," + base64.StdEncoding.EncodeToString(im.Data)
		parts = append(parts, openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: uri}))
	}
	return append(msgs, openai.UserMessage(parts))
}

// stripFence removes a Markdown code fence some OpenAI-compatible servers wrap JSON in.
func stripFence(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "```") {
		return t
	}
	t = strings.TrimPrefix(t, "```")
	t = strings.TrimPrefix(t, "json")
	t = strings.TrimSuffix(strings.TrimSpace(t), "```")
	return strings.TrimSpace(t)
}
