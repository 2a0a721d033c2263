package fetch_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/enricher/fetch"
)

func TestKVCacheServesAnotherInstance(t *testing.T) {
	env := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := env.JS.KeyValue(ctx, topology.BucketPages)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := env.JS.ObjectStore(ctx, topology.ObjectPages)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := fetch.NewKVCache(kv, obj)
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t)
	page := fixture(t, "ru-postgres.html")
	s.serve("/a", "text/html", page)
	s.serve("/b", "text/html", page) // the same body under a second URL
	s.handle("/gone", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "gone", http.StatusGone) })

	first, _ := newFetcher(t, loopbackConfig(s), fetch.WithCache(cache))
	r1 := mustFetch(t, first, s.URL+"/a?utm_source=x")
	wantReason(t, r1, "")
	wantReason(t, mustFetch(t, first, s.URL+"/b"), "")
	wantReason(t, mustFetch(t, first, s.URL+"/gone"), fetch.ReasonHTTPStatus)

	// A second instance (another enricher replica) with the same buckets fetches nothing.
	second, _ := newFetcher(t, loopbackConfig(s), fetch.WithCache(cache))
	r2 := mustFetch(t, second, s.URL+"/a#x")
	if !r2.Cached || r2.Title != r1.Title || r2.Text != r1.Text || r2.ContentSHA256 != r1.ContentSHA256 {
		t.Fatalf("second instance: cached=%v %q", r2.Cached, r2.Title)
	}
	wantReason(t, mustFetch(t, second, s.URL+"/gone"), fetch.ReasonHTTPStatus)
	if a, g := s.hitsOf("/a"), s.hitsOf("/gone"); a != 1 || g != 1 {
		t.Fatalf("server saw /a %d and /gone %d times, want 1 each", a, g)
	}
	body, err := cache.Body(ctx, r1.ContentSHA256)
	if err != nil || string(body) != string(page) {
		t.Fatalf("raw body by sha256: %d bytes, %v", len(body), err)
	}
	info, err := obj.GetInfo(ctx, r1.ContentSHA256)
	if err != nil || info.Size != uint64(len(page)) {
		t.Fatalf("object %v %v", info, err)
	}
	objs, err := obj.List(ctx)
	if err != nil || len(objs) != 1 {
		t.Fatalf("object store holds %d bodies (%v), want 1: content-addressed", len(objs), err)
	}

	// An expired entry is a miss.
	u := mustParseURL(t, s.URL+"/c")
	if err := cache.Put(ctx, u.String(), fetch.Result{URL: u.String(), Title: "old"}, nil, -time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := cache.Get(ctx, u.String()); ok || err != nil {
		t.Fatalf("expired entry: ok=%v err=%v", ok, err)
	}
}

func TestMemoryCacheBound(t *testing.T) {
	c := fetch.NewMemoryCache(2)
	ctx := context.Background()
	for i, u := range []string{"http://a", "http://b", "http://c"} {
		if err := c.Put(ctx, u, fetch.Result{URL: u}, nil, time.Duration(i+1)*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := c.Get(ctx, "http://a"); ok {
		t.Fatal("the entry closest to expiry was kept over the bound")
	}
	for _, u := range []string{"http://b", "http://c"} {
		if r, ok, err := c.Get(ctx, u); !ok || err != nil || r.URL != u {
			t.Fatalf("%s: %v %v", u, ok, err)
		}
	}
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
