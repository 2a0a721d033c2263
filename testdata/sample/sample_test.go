package sample_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/testdata/sample"
)

// TestGeneratedFilesAreCurrent runs generate.go into a temporary folder and compares every
// file with the embedded export: the committed sample (its sign pictures included) is what
// the generator writes, so it can be reproduced and changed from the generator alone.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	const font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
	if _, err := os.Stat(font); err != nil {
		if testenv.InCI() {
			t.Fatalf("font %s is required (apt-get install fonts-dejavu-core): %v", font, err)
		}
		t.Skipf("skipping: font %s not available (apt-get install fonts-dejavu-core): %v", font, err)
	}
	out := filepath.Join(t.TempDir(), "DataExport")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run generate.go: %v", err)
	}
	cmd := exec.Command(goBin, "run", "generate.go", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run generate.go: %v\n%s", err, b)
	}
	generated := map[string][]byte{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(out), p)
		if err != nil {
			return err
		}
		generated[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	embedded := 0
	err = fs.WalkDir(sample.FS, "DataExport", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		embedded++
		data, err := fs.ReadFile(sample.FS, p)
		if err != nil {
			return err
		}
		if g, ok := generated[p]; !ok {
			t.Errorf("%s is not written by generate.go", p)
		} else if !bytes.Equal(g, data) {
			t.Errorf("%s differs from what generate.go writes: run go generate ./testdata/sample", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if embedded != len(generated) {
		t.Errorf("%d files embedded, generate.go writes %d", embedded, len(generated))
	}
}
