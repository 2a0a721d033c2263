// Package session keeps the Telegram session of ingest (gotd's auth key and DC) in the
// tg-session KV bucket, encrypted at rest with AES-256-GCM, and logs an account in for it
// (QR code, or phone code with the 2FA password).
//
// The key comes from TGFLOW_SESSION_KEY: 32 random bytes written as base64 (standard or
// URL alphabet, padded or not: 43 or 44 characters) or as hex (64 characters). Make one
// with `openssl rand -base64 32` or `openssl rand -hex 32`. Every write uses a fresh random
// nonce; a wrong key fails with ErrWrongKey, whose text names the variable and never the
// key or the session.
package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	tdsession "github.com/gotd/td/session"
)

// KeySize is the length of the AES-256 key.
const KeySize = 32

// DefaultName is the KV key of the session of ingest.
const DefaultName = "ingest"

var (
	// ErrWrongKey is returned when the stored session cannot be decrypted: the key is not
	// the one it was written with, or the stored bytes were altered.
	ErrWrongKey = errors.New("session: the stored Telegram session cannot be decrypted: TGFLOW_SESSION_KEY is not the key it was written with, or the entry was altered")
	// ErrKey is returned for a TGFLOW_SESSION_KEY that is not 32 bytes in base64 or hex.
	ErrKey = errors.New("TGFLOW_SESSION_KEY must be 32 bytes written as base64 (43 or 44 characters) or hex (64 characters), e.g. from `openssl rand -base64 32`")
	// ErrFormat is returned for a stored entry that is not an encrypted session of this
	// package (a plaintext session, or another format version).
	ErrFormat = errors.New("session: the stored entry is not an encrypted tgflow session")
)

// format version byte of the stored entry: version ‖ nonce ‖ ciphertext+tag.
const formatV1 = 1

// ParseKey decodes TGFLOW_SESSION_KEY. The error never contains the value.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, ErrKey
}

// GenerateKey returns a new random key in base64, for documentation and tests.
func GenerateKey() string {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// Storage is a gotd session.Storage over a KV bucket, encrypted with AES-256-GCM.
type Storage struct {
	kv   jetstream.KeyValue
	name string
	aead cipher.AEAD
}

var _ tdsession.Storage = (*Storage)(nil)

// NewStorage stores the session under name (DefaultName when empty) in kv, the tg-session
// bucket, encrypted with key (KeySize bytes, see ParseKey).
func NewStorage(kv jetstream.KeyValue, key []byte, name string) (*Storage, error) {
	if kv == nil {
		return nil, errors.New("session: nil KV bucket")
	}
	if len(key) != KeySize {
		return nil, ErrKey
	}
	if name == "" {
		name = DefaultName
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return &Storage{kv: kv, name: name, aead: aead}, nil
}

// additional data binds a ciphertext to its entry: a session copied under another name
// does not decrypt.
func (s *Storage) ad() []byte { return []byte("tgflow/tg-session/v1/" + s.name) }

// LoadSession returns the decrypted session, or gotd's session.ErrNotFound when none is
// stored yet (gotd then starts a new one).
func (s *Storage) LoadSession(ctx context.Context) ([]byte, error) {
	e, err := s.kv.Get(ctx, s.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, tdsession.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: load: %w", err)
	}
	return s.open(e.Value())
}

// StoreSession encrypts data with a fresh random nonce and writes it.
func (s *Storage) StoreSession(ctx context.Context, data []byte) error {
	sealed, err := s.seal(data)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, s.name, sealed); err != nil {
		return fmt.Errorf("session: store: %w", err)
	}
	return nil
}

// Delete removes the stored session (a logout of this tgflow installation only).
func (s *Storage) Delete(ctx context.Context) error {
	if err := s.kv.Delete(ctx, s.name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("session: delete: %w", err)
	}
	return nil
}

func (s *Storage) seal(data []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("session: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(data)+s.aead.Overhead())
	out = append(out, formatV1)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, data, s.ad()), nil
}

func (s *Storage) open(b []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(b) < 1+ns+s.aead.Overhead() || b[0] != formatV1 {
		return nil, ErrFormat
	}
	nonce, ct := b[1:1+ns], b[1+ns:]
	data, err := s.aead.Open(nil, nonce, ct, s.ad())
	if err != nil {
		// GCM says only that authentication failed; so do we, without any of the bytes.
		return nil, ErrWrongKey
	}
	return data, nil
}
