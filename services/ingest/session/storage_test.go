package session_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	tdsession "github.com/gotd/td/session"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/session"
)

// Login cannot be exercised against tgtest (it has no auth.* or QR-token service), so
// the encrypted storage that login writes and ingest reads is tested thoroughly instead.

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	env := natstest.Start(t)
	kv, err := env.JS.KeyValue(context.Background(), topology.BucketSession)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func key(t *testing.T) []byte {
	t.Helper()
	k, err := session.ParseKey(session.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var secretSession = []byte(`{"Version":1,"Data":{"DC":2,"AuthKey":"c2VjcmV0LWF1dGgta2V5LWJ5dGVz","AuthKeyID":"aWQ="}}`)

func TestStorageRoundTripEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	kv := bucket(t)
	st, err := session.NewStorage(kv, key(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadSession(ctx); !errors.Is(err, tdsession.ErrNotFound) {
		t.Fatalf("empty bucket: %v, want gotd's ErrNotFound", err)
	}
	if err := st.StoreSession(ctx, secretSession); err != nil {
		t.Fatal(err)
	}
	got, err := st.LoadSession(ctx)
	if err != nil || !bytes.Equal(got, secretSession) {
		t.Fatalf("load: %q, %v", got, err)
	}
	e, err := kv.Get(ctx, session.DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Value()
	for _, plain := range [][]byte{secretSession, []byte("AuthKey"), []byte("c2VjcmV0")} {
		if bytes.Contains(raw, plain) {
			t.Fatalf("stored entry contains %q in plaintext", plain)
		}
	}
	if len(raw) != 1+12+len(secretSession)+16 {
		t.Fatalf("stored %d bytes, want version+nonce+ciphertext+tag", len(raw))
	}
}

func TestStorageFreshNoncePerWrite(t *testing.T) {
	ctx := context.Background()
	kv := bucket(t)
	st, err := session.NewStorage(kv, key(t), "n")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 20 {
		if err := st.StoreSession(ctx, secretSession); err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, "n")
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(e.Value()[1:13])
		if seen[nonce] {
			t.Fatal("nonce reused across writes")
		}
		seen[nonce] = true
	}
}

func TestStorageWrongKeyFailsClearly(t *testing.T) {
	ctx := context.Background()
	kv := bucket(t)
	right := session.GenerateKey()
	wrong := session.GenerateKey()
	kr, _ := session.ParseKey(right)
	kw, _ := session.ParseKey(wrong)
	st, _ := session.NewStorage(kv, kr, "")
	if err := st.StoreSession(ctx, secretSession); err != nil {
		t.Fatal(err)
	}
	other, _ := session.NewStorage(kv, kw, "")
	got, err := other.LoadSession(ctx)
	if !errors.Is(err, session.ErrWrongKey) || got != nil {
		t.Fatalf("wrong key: %q, %v", got, err)
	}
	msg := fmt.Sprintf("%v %+v", err, err)
	for _, leak := range []string{right, wrong, hex.EncodeToString(kr), hex.EncodeToString(kw), string(secretSession), "c2VjcmV0"} {
		if strings.Contains(msg, leak) {
			t.Fatalf("error %q leaks %q", msg, leak)
		}
	}
	if !strings.Contains(msg, "TGFLOW_SESSION_KEY") {
		t.Fatalf("error %q does not say which variable is wrong", msg)
	}
}

func TestStorageDetectsTamperingAndMovedEntries(t *testing.T) {
	ctx := context.Background()
	kv := bucket(t)
	k := key(t)
	a, _ := session.NewStorage(kv, k, "a")
	b, _ := session.NewStorage(kv, k, "b")
	if err := a.StoreSession(ctx, secretSession); err != nil {
		t.Fatal(err)
	}
	e, _ := kv.Get(ctx, "a")
	// The same ciphertext under another name does not decrypt: the name is authenticated.
	if _, err := kv.Put(ctx, "b", e.Value()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LoadSession(ctx); !errors.Is(err, session.ErrWrongKey) {
		t.Fatalf("moved entry: %v", err)
	}
	flipped := bytes.Clone(e.Value())
	flipped[len(flipped)-1] ^= 1
	if _, err := kv.Put(ctx, "a", flipped); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LoadSession(ctx); !errors.Is(err, session.ErrWrongKey) {
		t.Fatalf("tampered entry: %v", err)
	}
	// A plaintext session from elsewhere is refused, not misread.
	if _, err := kv.Put(ctx, "a", secretSession); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LoadSession(ctx); !errors.Is(err, session.ErrFormat) {
		t.Fatalf("plaintext entry: %v", err)
	}
	if err := a.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LoadSession(ctx); !errors.Is(err, tdsession.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestParseKeyFormats(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "base64", in: base64.StdEncoding.EncodeToString(raw), ok: true},
		{name: "base64 raw", in: base64.RawStdEncoding.EncodeToString(raw), ok: true},
		{name: "base64 url", in: base64.URLEncoding.EncodeToString(raw), ok: true},
		{name: "hex", in: hex.EncodeToString(raw), ok: true},
		{name: "hex upper with spaces", in: "  " + strings.ToUpper(hex.EncodeToString(raw)) + "\n", ok: true},
		{name: "short", in: base64.StdEncoding.EncodeToString(raw[:16])},
		{name: "long", in: hex.EncodeToString(append(raw, 1))},
		{name: "passphrase", in: "correct horse battery staple"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := session.ParseKey(tt.in)
			if tt.ok {
				if err != nil || !bytes.Equal(k, raw) {
					t.Fatalf("ParseKey: %x, %v", k, err)
				}
				return
			}
			if !errors.Is(err, session.ErrKey) {
				t.Fatalf("ParseKey(%q) = %x, %v; want ErrKey", tt.in, k, err)
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Fatalf("error prints the key: %v", err)
			}
		})
	}
	if _, err := session.NewStorage(nil, raw, ""); err == nil {
		t.Fatal("nil bucket accepted")
	}
}

func TestLoginRejectsUnknownMethod(t *testing.T) {
	err := session.Login(context.Background(), session.LoginOptions{AppID: 1, AppHash: "h", Method: "sms",
		Storage: &tdsession.StorageMemory{}, In: strings.NewReader(""), Out: &bytes.Buffer{}})
	if !errors.Is(err, session.ErrMethod) {
		t.Fatalf("Login with method sms: %v", err)
	}
}
