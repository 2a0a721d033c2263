package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// spooled is a file read to its end and hashed: its bytes are in mem, or in file when they
// did not fit in the memory budget.
type spooled struct {
	sha  string
	size int64
	mem  []byte
	file *os.File
}

// spool reads r to EOF (at most max bytes, else ErrTooLarge), hashing as it goes, so the
// object name is known before anything is written to the store.
func spool(r io.Reader, max, memBytes int64, tempDir string) (*spooled, error) {
	h := sha256.New()
	limited := io.LimitReader(r, max+1)
	var buf bytes.Buffer
	n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(limited, min(memBytes, max)+1))
	if err != nil {
		return nil, fmt.Errorf("media: read: %w", err)
	}
	s := &spooled{size: n}
	if n <= memBytes && n <= max {
		s.mem = buf.Bytes()
		s.sha = hex.EncodeToString(h.Sum(nil))
		return s, nil
	}
	if n > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	// Over the memory budget: move what we have to a temporary file and copy the rest.
	f, err := os.CreateTemp(tempDir, "tgflow-media-*")
	if err != nil {
		return nil, fmt.Errorf("media: spool: %w", err)
	}
	s.file = f
	if _, err := f.Write(buf.Bytes()); err != nil {
		s.close()
		return nil, fmt.Errorf("media: spool: %w", err)
	}
	rest, err := io.Copy(io.MultiWriter(f, h), limited)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("media: read: %w", err)
	}
	s.size += rest
	if s.size > max {
		s.close()
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.close()
		return nil, fmt.Errorf("media: spool: %w", err)
	}
	s.sha = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

func (s *spooled) reader() io.Reader {
	if s.file != nil {
		return s.file
	}
	return bytes.NewReader(s.mem)
}

func (s *spooled) close() {
	if s.file != nil {
		name := s.file.Name()
		_ = s.file.Close()
		_ = os.Remove(name)
		s.file = nil
	}
}

// ValidKey reports whether key is a lowercase hex SHA-256, the only names a store holds.
func ValidKey(key string) bool {
	if len(key) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
