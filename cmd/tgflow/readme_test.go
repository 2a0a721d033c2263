package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const repoRoot = "../.."

func readREADME(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// The documentation links nothing outside the repository: a user's clone has no ../shared.
// Every relative link of every Markdown file resolves to a file or directory of the repo.
func TestMarkdownLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == ".tgflow") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			abs := filepath.Clean(filepath.Join(filepath.Dir(path), target))
			if !strings.HasPrefix(abs, root+string(filepath.Separator)) {
				t.Errorf("%s links %s, outside the repository", rel, m[1])
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links %s, which does not exist", rel, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no relative link found: the pattern is broken")
	}
}

// Paths the README names in backquotes (`services/ingest/export/README.md`) exist: a moved
// package or file is noticed.
func TestREADMEPathsExist(t *testing.T) {
	readme := readREADME(t)
	path := regexp.MustCompile("`((?:cmd|services|projections|nats|events|migrations|internal|testdata|scripts|docs|\\.ci)/[^`\\s*<>]*)`")
	n := 0
	for _, m := range path.FindAllStringSubmatch(readme, -1) {
		n++
		if _, err := os.Stat(filepath.Join(repoRoot, m[1])); err != nil {
			t.Errorf("README names %s, which does not exist", m[1])
		}
	}
	for _, f := range []string{"Dockerfile", "docker-compose.yml", ".env.example", "tools.mod"} {
		if strings.Contains(readme, "`"+f+"`") {
			if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
				t.Errorf("README names %s, which does not exist", f)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d paths found: the pattern is broken", n)
	}
}

// Every command and every service of this binary has a row in the README's Commands table.
func TestREADMEDocumentsEveryCommand(t *testing.T) {
	readme := readREADME(t)
	start := strings.Index(readme, "## Commands")
	end := strings.Index(readme, "## Configuration")
	if start < 0 || end < start {
		t.Fatal("README has no Commands section before Configuration")
	}
	table := readme[start:end]
	for _, c := range commands() {
		if !strings.Contains(table, "| `tgflow "+c.name) {
			t.Errorf("README's Commands table has no row for tgflow %s", c.name)
		}
	}
	for _, s := range registry() {
		if !strings.Contains(table, "`"+s.Name+"`") {
			t.Errorf("README's Commands table does not name the service %s", s.Name)
		}
	}
}
