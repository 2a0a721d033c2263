package openaicompat

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/openai/openai-go/v3"

	"github.com/tgflow/tgflow/services/embed"
)

// Embedder embeds through the provider's /embeddings endpoint.
type Embedder struct {
	c    *Client
	info embed.Info
}

var _ embed.Embedder = (*Embedder)(nil)

// Embedder returns an embed.Embedder for the configured embeddings model, producing dim
// dimensions (a model answering with another dimension is a configuration error).
func (c *Client) Embedder(dim int) (*Embedder, error) {
	if c.cfg.EmbedModel == "" {
		return nil, fmt.Errorf("%w: TGFLOW_OPENAI_EMBED_MODEL is not set", ErrNotConfigured)
	}
	if dim <= 0 {
		return nil, errors.New("openaicompat: embedding dimension must be positive")
	}
	return &Embedder{c: c, info: embed.Info{Name: "openai", Model: c.cfg.EmbedModel, Version: "1", Dim: dim}}, nil
}

// Info names the vector space.
func (e *Embedder) Info() embed.Info { return e.info }

// Embed returns one L2-normalised vector per text.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	for i, t := range texts {
		if t == "" {
			return nil, fmt.Errorf("%w: text %d is empty", embed.ErrInvalidInput, i)
		}
	}
	out := make([][]float32, len(texts))
	err := e.c.call(ctx, "embed", func(ctx context.Context) (int64, error) {
		resp, err := e.c.api.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:          openai.EmbeddingModel(e.info.Model),
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
		})
		if err != nil {
			return 0, err
		}
		tokens := resp.Usage.TotalTokens
		if len(resp.Data) != len(texts) {
			return tokens, fmt.Errorf("%w: %d vectors for %d texts", ErrInvalidAnswer, len(resp.Data), len(texts))
		}
		for _, d := range resp.Data {
			if d.Index < 0 || int(d.Index) >= len(texts) || out[d.Index] != nil {
				return tokens, fmt.Errorf("%w: vector index %d out of place", ErrInvalidAnswer, d.Index)
			}
			if len(d.Embedding) != e.info.Dim {
				return tokens, fmt.Errorf("%w: model %s answers %d dimensions, TGFLOW_OPENAI_EMBED_DIM is %d",
					ErrRejected, e.info.Model, len(d.Embedding), e.info.Dim)
			}
			v, err := normalize(d.Embedding)
			if err != nil {
				return tokens, err
			}
			out[d.Index] = v
		}
		return tokens, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func normalize(in []float64) ([]float32, error) {
	var sum float64
	for _, x := range in {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%w: non-finite vector component", ErrInvalidAnswer)
		}
		sum += x * x
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: zero vector", ErrInvalidAnswer)
	}
	n := math.Sqrt(sum)
	out := make([]float32, len(in))
	for i, x := range in {
		out[i] = float32(x / n)
	}
	return out, nil
}
