package use_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tgflow/tgflow/services/embed/use"
)

// reference is testdata/use/reference.json, produced by the package itself
// (testdata/use/gen_reference.py).
type reference struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Cases   []struct {
		Name       string    `json:"name"`
		Text       string    `json:"text"`
		Normalized string    `json:"normalized"`
		IDs        []int32   `json:"ids"`
		Vector     []float32 `json:"vector"`
	} `json:"cases"`
}

func loadReference(t testing.TB) reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "use", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 30 {
		t.Fatalf("reference has %d cases, want >= 30", len(ref.Cases))
	}
	return ref
}

func TestTokenizerMatchesPackage(t *testing.T) {
	dir := modelsDir(t)
	tok, err := use.LoadTokenizer(filepath.Join(use.Dir(dir), use.SPModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() > use.TableRows {
		t.Fatalf("vocabulary of %d pieces exceeds the %d embedding rows", tok.VocabSize(), use.TableRows)
	}
	for _, c := range loadReference(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			if got := tok.Normalize(c.Text); got != c.Normalized {
				t.Errorf("Normalize(%q)\n got %q\nwant %q", c.Text, got, c.Normalized)
			}
			if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
				t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
			}
		})
	}
}

// TestTokenizerMatchesPackageRandom compares with the package on 240 seeded pseudo-random
// strings (testdata/use/gen_tokens.py) that stress the normaliser and the lattice.
func TestTokenizerMatchesPackageRandom(t *testing.T) {
	dir := modelsDir(t)
	tok, err := use.LoadTokenizer(filepath.Join(use.Dir(dir), use.SPModelFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "use", "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Seed  int64 `json:"seed"`
		Cases []struct {
			Text       string  `json:"text"`
			Normalized string  `json:"normalized"`
			IDs        []int32 `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cases generated with seed %d", len(ref.Cases), ref.Seed)
	bad := 0
	for i, c := range ref.Cases {
		if got := tok.Normalize(c.Text); got != c.Normalized {
			bad++
			t.Errorf("case %d: Normalize(%q)\n got %q\nwant %q", i, c.Text, got, c.Normalized)
		}
		if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
			bad++
			t.Errorf("case %d: Encode(%q)\n got %v\nwant %v", i, c.Text, got, c.IDs)
		}
		if bad > 10 {
			t.Fatal("too many mismatches")
		}
	}
}
