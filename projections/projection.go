// Package projections holds the read models built from the log: each adapter
// (projections/postgres, projections/qdrant, projections/neo4j) applies facts in log order
// and keeps its checkpoint (the last applied stream sequence) in the same write as the
// facts, so a redelivered batch can never be applied twice.
package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tgflow/tgflow/events"
)

// Fact is one log entry as a projection sees it: the decoded event and its stream sequence.
type Fact struct {
	Seq   uint64
	Event events.Event
}

// Projection applies facts to one read model.
type Projection interface {
	// Name is the projection's short name: "postgres", "qdrant", "neo4j".
	Name() string
	// Apply applies facts given in ascending Seq order. In one atomic write (where the backend
	// allows) it applies every fact with Seq above the stored checkpoint and stores the last
	// Seq as the new checkpoint; facts at or below the checkpoint are skipped. Facts of types
	// the projection does not use are skipped too. An error means nothing of the batch may be
	// assumed applied; the caller retries the same batch.
	Apply(ctx context.Context, facts []Fact) error
	// Checkpoint returns the last applied sequence (0 for an empty model).
	Checkpoint(ctx context.Context) (uint64, error)
	// Snapshot renders the whole model canonically (see Snapshot). It is for tests and
	// verify, not for hot paths.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Close releases the projection's resources (not the backend's data).
	Close() error
}

// Rebuilder is a projection that can rebuild itself into a shadow target and swap it live.
type Rebuilder interface {
	Projection
	// Shadow returns a projection over a new, empty shadow target (a new schema, a new
	// collection, a cleared graph). Calling it again resumes an unfinished shadow.
	Shadow(ctx context.Context) (Projection, error)
	// Swap makes the shadow the live model atomically; the caller has paused the live
	// projector first and resumes it afterwards.
	Swap(ctx context.Context, shadow Projection) error
	// DropShadow removes an unfinished shadow.
	DropShadow(ctx context.Context) error
}

// InPlace is implemented by a Rebuilder whose shadow is the live target itself (Neo4j
// Community has one database): Shadow clears the live model, so verify must snapshot the
// live model before rebuilding, and readers see a partial model until Swap.
type InPlace interface {
	InPlace() bool
}

// ErrBackend marks a failure of the backend (down, timeout): transient, retried with backoff.
var ErrBackend = errors.New("backend unavailable")

// ErrOrder is returned by Apply for facts not in strictly ascending Seq order: the checkpoint
// rule would skip or re-apply some of them. It is the caller's bug, not an outage.
var ErrOrder = errors.New("facts not in ascending sequence order")

// CheckOrder returns an error wrapping ErrOrder unless facts are in strictly ascending Seq
// order. Every Apply calls it first.
func CheckOrder(facts []Fact) error {
	for i := 1; i < len(facts); i++ {
		if facts[i].Seq <= facts[i-1].Seq {
			return fmt.Errorf("%w: seq %d after %d", ErrOrder, facts[i].Seq, facts[i-1].Seq)
		}
	}
	return nil
}

// Snapshot is a canonical, backend-neutral rendering of a read model: named sections (a
// table, a collection, a node label or relationship type) each holding one line per row,
// built only from the row's content (no wall-clock columns), sorted. Two models hold the
// same content exactly when their snapshots are equal.
type Snapshot map[string][]string

// Sort sorts every section in place and returns s.
func (s Snapshot) Sort() Snapshot {
	for _, lines := range s {
		sort.Strings(lines)
	}
	return s
}

// Digest is per-section row count and SHA-256 of the sorted lines.
type Digest map[string]SectionDigest

// SectionDigest is one section's count and content hash.
type SectionDigest struct {
	Rows int
	Hash string
}

// Digest computes the digest of s.
func (s Snapshot) Digest() Digest {
	d := Digest{}
	for name, lines := range s {
		sorted := slices.Clone(lines)
		sort.Strings(sorted)
		h := sha256.New()
		for _, l := range sorted {
			h.Write([]byte(l))
			h.Write([]byte{'\n'})
		}
		d[name] = SectionDigest{Rows: len(lines), Hash: hex.EncodeToString(h.Sum(nil))}
	}
	return d
}

// Diff lists the sections whose digests differ, one line each; empty when equal.
func (d Digest) Diff(o Digest) []string {
	var names []string
	for n := range d {
		names = append(names, n)
	}
	for n := range o {
		if _, ok := d[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		a, b := d[n], o[n]
		if a != b {
			out = append(out, fmt.Sprintf("%s: %d rows %.12s ≠ %d rows %.12s", n, a.Rows, a.Hash, b.Rows, b.Hash))
		}
	}
	return out
}

// String renders a snapshot for test failure messages.
func (s Snapshot) String() string {
	var names []string
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "[%s]\n", n)
		for _, l := range s[n] {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}
