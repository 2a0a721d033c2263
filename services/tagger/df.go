package tagger

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DF gives the document frequencies keyword scores are weighed against: how many of the N
// observed posts contain a stem.
type DF interface {
	DF(stem string) int
	N() int
}

// DFStore is a DF fed from the log. Observe records one document (its distinct stems, see
// Terms) at log sequence seq; a seq at or below Seq() was already observed and is ignored,
// so replaying the log over a restored snapshot, or a redelivered message, counts each post
// once. Feeding posts in log order makes the store a pure function of the log.
type DFStore interface {
	DF
	Observe(seq uint64, stems []string) bool
	// Seq is the log sequence of the last observed document (0: none).
	Seq() uint64
}

// ErrSnapshot marks a snapshot that cannot be restored.
var ErrSnapshot = errors.New("tagger: bad document-frequency snapshot")

// snapshotVersion changes with the snapshot's format or with Terms (a store built by other
// terms is another store).
const snapshotVersion = 1

// Snapshot is the state of a MemoryDF at log sequence Seq: what a stage keeps (in a KV bucket,
// or the object store when it outgrows a KV value) to resume without replaying the whole log.
type Snapshot struct {
	Version int            `json:"version"`
	Seq     uint64         `json:"seq"`
	N       int            `json:"n"`
	DF      map[string]int `json:"df"`
}

// MemoryDF is the in-memory DFStore. It is safe for concurrent use.
type MemoryDF struct {
	mu  sync.RWMutex
	seq uint64
	n   int
	df  map[string]int
}

// NewMemoryDF returns an empty store (no document observed).
func NewMemoryDF() *MemoryDF { return &MemoryDF{df: make(map[string]int)} }

// Observe records one document's distinct stems at log sequence seq (> 0). It reports whether
// the document was counted (false: seq was already observed).
func (m *MemoryDF) Observe(seq uint64, stems []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq <= m.seq {
		return false
	}
	m.seq = seq
	m.n++
	for _, s := range stems {
		m.df[s]++
	}
	return true
}

// DF is the number of observed documents containing stem.
func (m *MemoryDF) DF(stem string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.df[stem]
}

// N is the number of observed documents.
func (m *MemoryDF) N() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.n
}

// Seq is the log sequence of the last observed document.
func (m *MemoryDF) Seq() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.seq
}

// Snapshot copies the store's state.
func (m *MemoryDF) Snapshot() Snapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	df := make(map[string]int, len(m.df))
	for k, v := range m.df {
		df[k] = v
	}
	return Snapshot{Version: snapshotVersion, Seq: m.seq, N: m.n, DF: df}
}

// RestoreMemoryDF rebuilds a store from a snapshot.
func RestoreMemoryDF(s Snapshot) (*MemoryDF, error) {
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSnapshot, s.Version, snapshotVersion)
	}
	if s.N < 0 {
		return nil, fmt.Errorf("%w: n %d is negative", ErrSnapshot, s.N)
	}
	df := make(map[string]int, len(s.DF))
	for k, v := range s.DF {
		if v <= 0 || v > s.N {
			return nil, fmt.Errorf("%w: df(%q) = %d outside [1, n=%d]", ErrSnapshot, k, v, s.N)
		}
		df[k] = v
	}
	return &MemoryDF{seq: s.Seq, n: s.N, df: df}, nil
}

// MarshalBinary encodes the snapshot as gzip-compressed JSON (keys sorted: the same state
// gives the same bytes).
func (s Snapshot) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return nil, fmt.Errorf("tagger: encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("tagger: compress snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (s *Snapshot) UnmarshalBinary(b []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	var out Snapshot
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	*s = out
	return nil
}
