package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every fuzz target in the repository runs in the test command's fuzzing pass: a target
// that scripts/test.sh does not list would never fuzz, only replay its seeds.
func TestTestScriptFuzzesEveryTarget(t *testing.T) {
	root := filepath.Join("..", "..")
	script, err := os.ReadFile(filepath.Join(root, "scripts", "test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*"(\./\S+) (Fuzz\w+)"$`).FindAllStringSubmatch(string(script), -1) {
		listed[m[1]+" "+m[2]] = true
	}
	if len(listed) == 0 {
		t.Fatal("scripts/test.sh lists no fuzz targets (FUZZ_TARGETS)")
	}
	decl := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	found := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			found++
			key := "./" + filepath.ToSlash(rel) + " " + m[1]
			if !listed[key] {
				t.Errorf("%s declares %s, which scripts/test.sh's FUZZ_TARGETS does not list (%q)", path, m[1], key)
			}
			delete(listed, key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range listed {
		t.Errorf("scripts/test.sh fuzzes %q, which no test file declares", k)
	}
	if found == 0 {
		t.Fatal("no fuzz target found in the repository")
	}
}
