package media

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
)

// Memory is a content-addressed store held in process memory, with the same semantics as
// Store. It is meant for tests and small local runs; nothing survives the process.
type Memory struct {
	maxBytes int64
	mu       sync.Mutex
	objects  map[string]memObject
}

type memObject struct {
	data []byte
	meta Meta
}

// NewMemory returns an empty store; maxBytes ≤ 0 means DefaultMaxBytes.
func NewMemory(maxBytes int64) *Memory {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Memory{maxBytes: maxBytes, objects: map[string]memObject{}}
}

// Put is Store.Put.
func (m *Memory) Put(_ context.Context, r io.Reader, meta Meta) (string, bool, error) {
	sp, err := spool(r, m.maxBytes, m.maxBytes, "")
	if err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[sp.sha]; ok {
		return sp.sha, false, nil
	}
	m.objects[sp.sha] = memObject{data: bytes.Clone(sp.mem), meta: meta}
	return sp.sha, true, nil
}

// Has is Store.Has.
func (m *Memory) Has(_ context.Context, sha string) (bool, error) {
	if !ValidKey(sha) {
		return false, fmt.Errorf("%w: %q", ErrBadKey, sha)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objects[sha]
	return ok, nil
}

// Get is Store.Get.
func (m *Memory) Get(_ context.Context, sha string) (io.ReadCloser, Meta, error) {
	if !ValidKey(sha) {
		return nil, Meta{}, fmt.Errorf("%w: %q", ErrBadKey, sha)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[sha]
	if !ok {
		return nil, Meta{}, fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	return io.NopCloser(bytes.NewReader(o.data)), o.meta, nil
}

// Len is the number of distinct objects stored.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects)
}
