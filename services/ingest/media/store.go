package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream Object Store bucket that holds media.
const Bucket = "media"

// BucketConfig is the declaration of the media bucket, for the code that applies the
// project's streams and buckets.
func BucketConfig() jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "tgflow media, content-addressed: object name = hex sha256 of the bytes",
		Storage:     jetstream.FileStorage,
	}
}

// Meta describes a file being stored. It is kept with the object the first time its bytes
// are stored; later puts of the same bytes under another name do not change it.
type Meta struct {
	// Name is the original file name, if any.
	Name string
	// MIME is the media type, if known.
	MIME string
}

// Metadata keys kept on each object.
const (
	MetaFileName = "file_name"
	MetaMIME     = "mime"
)

// Store is the content-addressed media store over a JetStream Object Store bucket.
type Store struct {
	obs jetstream.ObjectStore
	cfg Config
	// locks serialises puts of the same bytes within this process, so concurrent puts of
	// one photo write it once. Two processes racing on the same new object may both
	// write it; the object store keeps the last and its bytes are the same either way.
	locks keyedMutex
}

// NewStore wraps the media bucket. Create the bucket with BucketConfig.
func NewStore(obs jetstream.ObjectStore, cfg Config) (*Store, error) {
	if obs == nil {
		return nil, errors.New("media: nil object store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("media: config: %w", err)
	}
	cfg.setDefaults()
	return &Store{obs: obs, cfg: cfg}, nil
}

// MaxBytes is the size cap of one file.
func (s *Store) MaxBytes() int64 { return s.cfg.MaxBytes }

// Put reads r to its end and stores the bytes under their hex SHA-256, which it returns.
// stored is false when the bytes were already there (nothing is written then). A file over
// the size cap fails with ErrTooLarge; other errors are transient (the store is
// unreachable) and worth a retry.
func (s *Store) Put(ctx context.Context, r io.Reader, meta Meta) (sha string, stored bool, err error) {
	sp, err := spool(r, s.cfg.MaxBytes, s.cfg.MemoryBytes, s.cfg.TempDir)
	if err != nil {
		return "", false, err
	}
	defer sp.close()
	unlock := s.locks.lock(sp.sha)
	defer unlock()

	info, err := s.obs.GetInfo(ctx, sp.sha)
	switch {
	case err == nil && digestIs(info.Digest, sp.sha):
		return sp.sha, false, nil
	case err == nil:
		// An object under this name whose bytes do not hash to it can only come from a
		// writer that broke the naming rule; replace it with the right bytes.
	case errors.Is(err, jetstream.ErrObjectNotFound):
	default:
		return "", false, fmt.Errorf("media: look up %s: %w", sp.sha, err)
	}

	om := jetstream.ObjectMeta{Name: sp.sha, Metadata: map[string]string{}}
	if meta.Name != "" {
		om.Metadata[MetaFileName] = meta.Name
	}
	if meta.MIME != "" {
		om.Metadata[MetaMIME] = meta.MIME
		om.Headers = nats.Header{"Content-Type": []string{meta.MIME}}
	}
	info, err = s.obs.Put(ctx, om, sp.reader())
	if err != nil {
		return "", false, fmt.Errorf("media: put %s: %w", sp.sha, err)
	}
	if !digestIs(info.Digest, sp.sha) || int64(info.Size) != sp.size {
		return "", false, fmt.Errorf("media: put %s: store reports digest %s and %d bytes, want %d bytes", sp.sha, info.Digest, info.Size, sp.size)
	}
	return sp.sha, true, nil
}

// Has reports whether the object is stored.
func (s *Store) Has(ctx context.Context, sha string) (bool, error) {
	if !ValidKey(sha) {
		return false, fmt.Errorf("%w: %q", ErrBadKey, sha)
	}
	_, err := s.obs.GetInfo(ctx, sha)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, nil
	}
	return false, fmt.Errorf("media: look up %s: %w", sha, err)
}

// Get opens a stored object. The caller closes it. Its Meta is what the first Put gave.
func (s *Store) Get(ctx context.Context, sha string) (io.ReadCloser, Meta, error) {
	if !ValidKey(sha) {
		return nil, Meta{}, fmt.Errorf("%w: %q", ErrBadKey, sha)
	}
	res, err := s.obs.Get(ctx, sha)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, Meta{}, fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	if err != nil {
		return nil, Meta{}, fmt.Errorf("media: get %s: %w", sha, err)
	}
	info, err := res.Info()
	if err != nil {
		_ = res.Close()
		return nil, Meta{}, fmt.Errorf("media: get %s: %w", sha, err)
	}
	return res, Meta{Name: info.Metadata[MetaFileName], MIME: info.Metadata[MetaMIME]}, nil
}

// keyedMutex is a set of mutexes by key, each dropped when nobody holds or waits for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// digestIs compares the object store's "SHA-256=<base64url>" digest with a hex sha256.
func digestIs(digest, hexSHA string) bool {
	raw, err := jetstream.DecodeObjectDigest(digest)
	if err != nil || len(raw) != sha256.Size {
		return false
	}
	return hex.EncodeToString(raw) == hexSHA
}
