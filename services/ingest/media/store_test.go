package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/services/ingest/media"
)

// store is the contract both implementations keep.
type store interface {
	Put(ctx context.Context, r io.Reader, meta media.Meta) (string, bool, error)
	Has(ctx context.Context, sha string) (bool, error)
	Get(ctx context.Context, sha string) (io.ReadCloser, media.Meta, error)
}

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

func newObjectStore(t *testing.T, cfg media.Config) (*media.Store, jetstream.ObjectStore) {
	t.Helper()
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs, err := js.CreateObjectStore(ctx, media.BucketConfig())
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	st, err := media.NewStore(obs, cfg)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return st, obs
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStores(t *testing.T) {
	impls := []struct {
		name string
		new  func(t *testing.T, max int64) store
	}{
		{"jetstream", func(t *testing.T, max int64) store {
			// A small memory budget makes the larger cases spool through a temporary file.
			st, _ := newObjectStore(t, media.Config{MaxBytes: max, MemoryBytes: 1024, TempDir: t.TempDir()})
			return st
		}},
		{"memory", func(t *testing.T, max int64) store { return media.NewMemory(max) }},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			st := impl.new(t, 64<<10)
			ctx := ctxT(t)
			small := []byte("a tiny photo")
			big := bytes.Repeat([]byte("0123456789abcdef"), 4000) // 64000 bytes: over the memory budget, under the cap

			for _, tc := range []struct {
				name string
				data []byte
			}{{"small", small}, {"spooled to disk", big}, {"empty", nil}} {
				t.Run(tc.name, func(t *testing.T) {
					sha, stored, err := st.Put(ctx, bytes.NewReader(tc.data), media.Meta{Name: "p.jpg", MIME: "image/jpeg"})
					if err != nil {
						t.Fatalf("put: %v", err)
					}
					if want := hexSHA(tc.data); sha != want {
						t.Fatalf("sha = %s, want %s", sha, want)
					}
					if !stored {
						t.Fatal("first put: stored = false")
					}
					sha2, stored2, err := st.Put(ctx, bytes.NewReader(tc.data), media.Meta{Name: "other.jpg"})
					if err != nil || sha2 != sha || stored2 {
						t.Fatalf("second put = %s, %v, %v; want same sha, not stored", sha2, stored2, err)
					}
					ok, err := st.Has(ctx, sha)
					if err != nil || !ok {
						t.Fatalf("has = %v, %v", ok, err)
					}
					rc, meta, err := st.Get(ctx, sha)
					if err != nil {
						t.Fatalf("get: %v", err)
					}
					got, err := io.ReadAll(rc)
					_ = rc.Close()
					if err != nil || !bytes.Equal(got, tc.data) {
						t.Fatalf("get: %d bytes, %v; want %d bytes", len(got), err, len(tc.data))
					}
					if meta.Name != "p.jpg" || meta.MIME != "image/jpeg" {
						t.Fatalf("meta = %+v, want the first put's", meta)
					}
				})
			}

			t.Run("too large", func(t *testing.T) {
				data := bytes.Repeat([]byte{7}, 64<<10+1)
				_, _, err := st.Put(ctx, bytes.NewReader(data), media.Meta{})
				if !errors.Is(err, media.ErrTooLarge) {
					t.Fatalf("err = %v, want ErrTooLarge", err)
				}
				if ok, _ := st.Has(ctx, hexSHA(data)); ok {
					t.Fatal("a too large file was stored")
				}
				exact := data[:64<<10]
				if _, _, err := st.Put(ctx, bytes.NewReader(exact), media.Meta{}); err != nil {
					t.Fatalf("a file of exactly the cap: %v", err)
				}
			})
			t.Run("missing and bad keys", func(t *testing.T) {
				missing := hexSHA([]byte("never stored"))
				if ok, err := st.Has(ctx, missing); ok || err != nil {
					t.Fatalf("has = %v, %v", ok, err)
				}
				if _, _, err := st.Get(ctx, missing); !errors.Is(err, media.ErrNotFound) {
					t.Fatalf("get err = %v, want ErrNotFound", err)
				}
				if _, err := st.Has(ctx, "../etc/passwd"); !errors.Is(err, media.ErrBadKey) {
					t.Fatalf("has err = %v, want ErrBadKey", err)
				}
			})
			t.Run("reader error", func(t *testing.T) {
				boom := errors.New("disk on fire")
				_, _, err := st.Put(ctx, io.MultiReader(strings.NewReader("abc"), errReader{boom}), media.Meta{})
				if !errors.Is(err, boom) {
					t.Fatalf("err = %v, want the reader's", err)
				}
			})
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Storing the same bytes twice keeps one object: the bucket holds one object and one copy
// of its chunks, also when the puts are concurrent.
func TestStoreDeduplicates(t *testing.T) {
	st, obs := newObjectStore(t, media.Config{})
	ctx := ctxT(t)
	photo := bytes.Repeat([]byte("jpeg"), 1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, _, err := st.Put(ctx, bytes.NewReader(photo), media.Meta{}); err != nil {
				t.Errorf("put: %v", err)
			}
		})
	}
	wg.Wait()
	for range 3 {
		if _, stored, err := st.Put(ctx, bytes.NewReader(photo), media.Meta{}); err != nil || stored {
			t.Fatalf("sequential put: stored = %v, err = %v", stored, err)
		}
	}
	if _, _, err := st.Put(ctx, strings.NewReader("another photo"), media.Meta{}); err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("bucket has %d objects, want 2", len(list))
	}
	status, err := obs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Puts of the same bytes are serialised within a Store, so the concurrent first puts
	// write the chunks once: what stays is one copy per object plus metadata.
	if max := uint64(len(photo)+len("another photo")) + 2048; status.Size() > max {
		t.Fatalf("bucket holds %d bytes, want at most %d (one copy of each)", status.Size(), max)
	}
}

// An object whose bytes do not match its name (a writer broke the rule) is replaced.
func TestStoreRepairsMisnamedObject(t *testing.T) {
	st, obs := newObjectStore(t, media.Config{})
	ctx := ctxT(t)
	good := []byte("the right bytes")
	if _, err := obs.PutBytes(ctx, hexSHA(good), []byte("wrong bytes")); err != nil {
		t.Fatal(err)
	}
	sha, stored, err := st.Put(ctx, bytes.NewReader(good), media.Meta{})
	if err != nil || !stored {
		t.Fatalf("put = %v, %v; want stored", stored, err)
	}
	got, err := obs.GetBytes(ctx, sha)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("object = %q, %v", got, err)
	}
}

func TestNewStoreRejects(t *testing.T) {
	if _, err := media.NewStore(nil, media.Config{}); err == nil {
		t.Fatal("nil object store accepted")
	}
	_, obs := newObjectStore(t, media.Config{})
	if _, err := media.NewStore(obs, media.Config{MaxBytes: -1}); err == nil {
		t.Fatal("negative max bytes accepted")
	}
}

func TestSpoolLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	st, _ := newObjectStore(t, media.Config{MaxBytes: 10_000, MemoryBytes: 10, TempDir: dir})
	ctx := ctxT(t)
	for _, n := range []int{100, 10_001} {
		_, _, _ = st.Put(ctx, bytes.NewReader(bytes.Repeat([]byte{1}, n)), media.Meta{})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("temp dir has %d leftover files", len(entries))
	}
}
