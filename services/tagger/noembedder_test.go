package tagger_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/openaicompat"
	"github.com/tgflow/tgflow/services/tagger"
)

// TestTaggerHasNoEmbedder: a post is embedded once, by the embedder stage, which also gives
// it its topics. The tagger reads none of the embedder's settings (only the OpenAI-compatible
// provider's, for its chat model) and its code imports no embedder.
func TestTaggerHasNoEmbedder(t *testing.T) {
	provider := map[string]bool{}
	for _, v := range config.Vars(&openaicompat.Config{}) {
		provider[v.Name] = true
	}
	var embedderOnly []string
	for _, v := range config.Vars(&embedder.Config{}) {
		if !provider[v.Name] {
			embedderOnly = append(embedderOnly, v.Name)
		}
	}
	if !slices.Contains(embedderOnly, "TGFLOW_EMBEDDER") {
		t.Fatalf("the embedder's own variables %q lack TGFLOW_EMBEDDER", embedderOnly)
	}
	for _, v := range config.Vars(tagger.Spec().Config()) {
		if slices.Contains(embedderOnly, v.Name) {
			t.Errorf("the tagger reads the embedder's %s", v.Name)
		}
	}

	forbidden := []string{
		"github.com/tgflow/tgflow/services/embedder",
		"github.com/tgflow/tgflow/services/embed",
		"github.com/tgflow/tgflow/services/embed/use",
		"github.com/tgflow/tgflow/services/embed/hashing",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ast, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(forbidden, path) {
				t.Errorf("%s imports %s: the tagger embeds nothing", f, path)
			}
		}
	}
}
