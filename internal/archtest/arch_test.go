// Package archtest checks the layer rule of production code: imports go one way,
// cmd/ → services/ → projections/ → events/, with nats/ (the log, the runtime) usable by
// services and by the projection runner but never importing services/ or cmd/.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tgflow/tgflow/"

// forbidden maps a top-level folder to the top-level folders it may not import.
var forbidden = map[string][]string{
	"events":      {"nats", "projections", "services", "cmd", "migrations"},
	"projections": {"services", "cmd"},
	"nats":        {"services", "cmd"},
	"migrations":  {"nats", "projections", "services", "cmd"},
	"internal":    {"projections", "services", "cmd"},
	"services":    {"cmd"},
	"testdata":    {"nats", "projections", "services", "cmd"},
}

func TestImportsGoOneWay(t *testing.T) {
	root := "../.."
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "target") {
			return filepath.SkipDir
		}
		// Production code only: black-box tests may use fixtures from any layer (the events
		// tests round-trip the projection contract's scripted log, which has every type).
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		top := strings.Split(filepath.ToSlash(rel), "/")[0]
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			target := strings.Split(strings.TrimPrefix(p, module), "/")[0]
			if target == "cmd" && top != "cmd" {
				t.Errorf("%s imports %s: nothing imports cmd/", rel, p)
			}
			for _, bad := range forbidden[top] {
				if target == bad {
					t.Errorf("%s imports %s: %s/ may not import %s/", rel, p, top, bad)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: is the walk rooted at the repository?", checked)
	}
}
