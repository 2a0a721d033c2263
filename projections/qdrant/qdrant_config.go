package qdrant

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Options configure the Qdrant projection.
type Options struct {
	// Alias is the base of the alias readers search: the projection serves
	// AliasFor(Alias, Space) ("<Alias>_<space>"), which points at the live collection
	// "<Alias>_<space>_v<N>". Default "posts".
	Alias string
	// Space is the vector space the projection holds: the configured embedder's. Required
	// (Name and Dim), since the collection exists before the first vector. Embeddings of
	// any other space are skipped (never written), counted through OnSkip and logged once
	// per space.
	Space Space
	// ScrollPage is the page size of the scrolls Snapshot makes. Default 256.
	ScrollPage int
	// Logger logs the first skipped embedding of each other space. Default slog.Default().
	Logger *slog.Logger
	// OnSkip, when set, is called once for every embedding of another space that Apply
	// skips (a metric). Replays call it again for the same facts.
	OnSkip func(Space)
}

func (o *Options) setDefaults() {
	if o.Alias == "" {
		o.Alias = "posts"
	}
	if o.ScrollPage == 0 {
		o.ScrollPage = 256
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem of the options.
func (o Options) Validate() error {
	var errs []error
	if err := o.Space.validate(); err != nil {
		errs = append(errs, err)
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
