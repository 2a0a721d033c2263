package neo4j

import (
	"errors"
	"fmt"
)

// Options configure the Neo4j projection.
type Options struct {
	// Database is the database the graph lives in; empty means the server's default database
	// ("neo4j"). Neo4j Community has exactly one user database, hence the in-place rebuild.
	Database string
	// TextRunes bounds the text excerpt kept on a Post node, and likewise a Page's excerpt
	// and an Image's OCR text. Default 500 (the same excerpt the Qdrant payload carries).
	TextRunes int
	// ClearBatch is the number of nodes one inner transaction deletes when Shadow or
	// DropShadow clears the graph. Default 10000.
	ClearBatch int
}

func (o *Options) setDefaults() {
	if o.TextRunes == 0 {
		o.TextRunes = 500
	}
	if o.ClearBatch == 0 {
		o.ClearBatch = 10_000
	}
}

// Validate reports every problem of the options.
func (o Options) Validate() error {
	var errs []error
	if o.TextRunes < 0 {
		errs = append(errs, fmt.Errorf("text runes %d is negative", o.TextRunes))
	}
	if o.ClearBatch < 0 {
		errs = append(errs, fmt.Errorf("clear batch %d is negative", o.ClearBatch))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("neo4j options: %w", err)
	}
	return nil
}
