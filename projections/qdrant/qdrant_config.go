package qdrant

import (
	"errors"
	"fmt"
	"strings"
)

// Options configure the Qdrant projection.
type Options struct {
	// Alias is the name readers search: it points at the live collection <Alias>_v<N>.
	// Default "posts".
	Alias string
	// Dim is the embedding dimension every collection is created with. Required: it comes
	// from the embedder's configuration, so the collection exists before the first vector.
	Dim int
	// Model, when set, keeps only embeddings made by this model; embeddings of other models
	// are skipped. A log that outlived a model change holds vectors of both models (often of
	// different dimensions); a rebuild for the new model must not trip over the old ones.
	Model string
	// ScrollPage is the page size of the scrolls Snapshot makes. Default 256.
	ScrollPage int
}

func (o *Options) setDefaults() {
	if o.Alias == "" {
		o.Alias = "posts"
	}
	if o.ScrollPage == 0 {
		o.ScrollPage = 256
	}
}

// Validate reports every problem of the options.
func (o Options) Validate() error {
	var errs []error
	if o.Dim <= 0 {
		errs = append(errs, fmt.Errorf("dim %d: must be positive (the embedder's dimension)", o.Dim))
	}
	if o.Alias == "" || strings.ContainsAny(o.Alias, `<>:"/\|?* `) {
		errs = append(errs, fmt.Errorf("alias %q is not a valid collection name", o.Alias))
	}
	if o.ScrollPage < 0 {
		errs = append(errs, fmt.Errorf("scroll page %d is negative", o.ScrollPage))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("qdrant options: %w", err)
	}
	return nil
}
