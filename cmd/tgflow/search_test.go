package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/search"
	"github.com/tgflow/tgflow/services/search/searchtest"
)

// corpusPostgres is the search corpus in a fresh Postgres read model; its URL.
func corpusPostgres(t *testing.T) string {
	t.Helper()
	c, err := searchtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := c.Events(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return searchtest.Postgres(t, searchtest.Facts(evs))
}

func TestSearchCommand(t *testing.T) {
	url := corpusPostgres(t)
	env := []string{"TGFLOW_POSTGRES_URL=" + url, "TGFLOW_DATA_DIR=" + t.TempDir()}

	t.Run("json", func(t *testing.T) {
		out, errOut, err := tgflow(t, env, "search", "сборщик", "мусора", "--limit", "3", "--json")
		if err != nil {
			t.Fatalf("search: %v\n%s", err, errOut)
		}
		var hits []map[string]any
		if err := json.Unmarshal([]byte(out), &hits); err != nil {
			t.Fatalf("--json is not a JSON array: %v\n%s", err, out)
		}
		if len(hits) == 0 {
			t.Fatalf("no hit:\n%s", out)
		}
		for _, k := range []string{"channel_id", "message_id", "date", "link", "excerpt", "tags", "score", "backend"} {
			if _, ok := hits[0][k]; !ok {
				t.Errorf("a hit has no %q: %v", k, hits[0])
			}
		}
		if hits[0]["channel_id"] != 1001.0 || hits[0]["message_id"] != 1.0 || hits[0]["backend"] != "postgres" || hits[0]["link"] != "https://t.me/tech_ru/1" {
			t.Errorf("first hit %v, want 1001/1 by postgres", hits[0])
		}
	})
	t.Run("text with filters", func(t *testing.T) {
		out, errOut, err := tgflow(t, env, "search", "go", "--channel", "@devworld", "--since", "2026-01-01", "--until", "2026-12-31")
		if err != nil {
			t.Fatalf("search: %v\n%s", err, errOut)
		}
		if !strings.Contains(out, "1. Dev World @devworld · 2026-01-09") || !strings.Contains(out, "**Go**") || strings.Contains(out, "tech_ru") ||
			!strings.Contains(out, "https://t.me/devworld/2") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("bad input says what is wrong", func(t *testing.T) {
		_, _, err := tgflow(t, env, "search", "go", "--limit", "500", "--since", "yesterday")
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "limit: 500 is out of range 1..50") || !strings.Contains(err.Error(), `--since: "yesterday" is not a date`) {
			t.Errorf("err %v", err)
		}
		if _, _, err := tgflow(t, env, "search"); !errors.Is(err, errUsage) {
			t.Errorf("no query: %v", err)
		}
	})
	t.Run("related needs Neo4j", func(t *testing.T) {
		_, _, err := tgflow(t, env, "search", "--related", "tech_ru/7")
		if !errors.Is(err, search.ErrNoBackend) || !strings.Contains(err.Error(), "TGFLOW_NEO4J_URI") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		_, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + t.TempDir()}, "search", "go")
		if err == nil || !strings.Contains(err.Error(), "TGFLOW_POSTGRES_URL") {
			t.Errorf("err %v", err)
		}
	})
}

// TestSearchRefusesAnotherEmbedder: the collection holds USE vectors; a query embedded by
// the hashing embedder (the tests' TGFLOW_EMBEDDER) is refused, naming both spaces.
func TestSearchRefusesAnotherEmbedder(t *testing.T) {
	c, err := searchtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	emb := usetest.Load(t)
	evs, err := c.Events(context.Background(), emb)
	if err != nil {
		t.Fatal(err)
	}
	q := searchtest.Qdrant(t, searchtest.Facts(evs), emb.Info())
	addr := os.Getenv(testenv.EnvQdrantAddr) // set: searchtest.Qdrant required it
	_, _, err = tgflow(t, []string{"TGFLOW_QDRANT_ADDR=" + addr, "TGFLOW_QDRANT_ALIAS=" + q.Base, "TGFLOW_DATA_DIR=" + t.TempDir()}, "search", "marathon")
	if !errors.Is(err, search.ErrSpaceMismatch) || !strings.Contains(err.Error(), emb.Info().Space()) || !strings.Contains(err.Error(), "hashing") {
		t.Fatalf("err %v, want a space mismatch naming %s and the hashing space", err, emb.Info().Space())
	}
}

func TestAPICommandServesAndStops(t *testing.T) {
	url := corpusPostgres(t)
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"api", "--addr", "127.0.0.1:0"}, &out, &errOut, []string{
			"TGFLOW_EMBEDDED_PORT=0", "TGFLOW_HTTP_ADDR=", "TGFLOW_LOG_LEVEL=warn", "TGFLOW_EMBEDDER=hashing",
			"TGFLOW_POSTGRES_URL=" + url, "TGFLOW_DATA_DIR=" + t.TempDir()})
	}()
	addrRE := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/`)
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("api stopped: %v\n%s", err, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("api did not say where it listens:\n%s\n%s", out.String(), errOut.String())
		}
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, want string
		status     int
	}{
		{"/healthz", `"ok"`, 200},
		{"/readyz", `"postgres":"ok"`, 200},
		{"/api/search?q=%D0%B2%D1%83%D0%BB%D0%BA%D0%B0%D0%BD", `"channel_id":1003,`, 200},
		{"/api/search?q=go&limit=0", "limit: 0 is out of range", 400},
		{"/?q=%D0%B2%D1%83%D0%BB%D0%BA%D0%B0%D0%BD", "<mark>вулкан</mark>", 200},
		{"/api/posts/nauka_i_zhizn/4", `"text":"На Камчатке проснулся вулкан`, 200},
	} {
		status, body := get(c.path)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want %d with %s: %.400s", c.path, status, c.status, c.want, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("api after cancel: %v\n%s", err, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("api did not stop")
	}
}
