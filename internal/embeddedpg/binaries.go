package embeddedpg

import (
	"archive/tar"
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ulikunitz/xz"
)

// Version is the PostgreSQL release laptop mode runs (the zonky build's version).
const Version = "18.3.0"

// MavenCentral is where the binaries come from unless Options.Repository says otherwise.
const MavenCentral = "https://repo1.maven.org/maven2"

// pinned are the sha256 digests of the zonky jars of Version, by the jar's architecture
// name. A download or a cached jar with another digest is refused.
var pinned = map[string]string{
	"amd64":   "1974c3a59c3ae010e9818e81637e425aad94eaac26e4ef533b42e081fe7ca345",
	"arm64v8": "1fb555a6602c13a113ab1f0cc9224d599948e85e51ac5f001393605505eaf78e",
}

// jarArch is the architecture name of the zonky artifact for this platform.
func jarArch() (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("%w: no pinned Postgres build for %s/%s", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
	}
	if _, err := os.Stat("/etc/alpine-release"); err == nil {
		return "", fmt.Errorf("%w: no pinned Postgres build for musl (Alpine)", ErrUnsupported)
	}
	switch runtime.GOARCH {
	case "amd64":
		return "amd64", nil
	case "arm64":
		return "arm64v8", nil
	}
	return "", fmt.Errorf("%w: no pinned Postgres build for linux/%s", ErrUnsupported, runtime.GOARCH)
}

func jarName(arch string) string {
	return fmt.Sprintf("embedded-postgres-binaries-linux-%s-%s.jar", arch, Version)
}

// fetchJar returns the path of the pinned jar in cacheDir, downloading it from repo first
// when it is not there (or not the pinned bytes).
func fetchJar(ctx context.Context, repo, cacheDir string, logf func(string, ...any)) (string, error) {
	arch, err := jarArch()
	if err != nil {
		return "", err
	}
	want := pinned[arch]
	path := filepath.Join(cacheDir, jarName(arch))
	if got, err := fileSHA256(path); err == nil && got == want {
		return path, nil
	} else if err == nil {
		logf("cached Postgres archive has another digest; downloading it again", "path", path, "sha256", got)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("embedded Postgres: cache dir: %w", err)
	}
	u := fmt.Sprintf("%s/io/zonky/test/postgres/embedded-postgres-binaries-linux-%s/%s/%s", strings.TrimRight(repo, "/"), arch, Version, jarName(arch))
	logf("downloading Postgres "+Version+" (once; kept in the cache)", "url", u, "cache", cacheDir)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("embedded Postgres: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDownload, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: GET %s: %s", ErrDownload, u, resp.Status)
	}
	tmp, err := os.CreateTemp(cacheDir, ".download-*")
	if err != nil {
		return "", fmt.Errorf("embedded Postgres: cache dir: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		tmp.Close()
		return "", fmt.Errorf("%w: GET %s: %w", ErrDownload, u, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("embedded Postgres: cache: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, u, got, want)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("embedded Postgres: cache: %w", err)
	}
	return path, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract unpacks the .txz inside the jar into dest (bin, lib, share), through a temporary
// directory renamed into place, so a half-extracted tree is never taken for a whole one.
func extract(jar, dest string) error {
	zr, err := zip.OpenReader(jar)
	if err != nil {
		return fmt.Errorf("embedded Postgres: open %s: %w", jar, err)
	}
	defer zr.Close()
	var txz *zip.File
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".txz") {
			txz = f
			break
		}
	}
	if txz == nil {
		return fmt.Errorf("embedded Postgres: %s holds no .txz", jar)
	}
	rc, err := txz.Open()
	if err != nil {
		return fmt.Errorf("embedded Postgres: %s: %w", jar, err)
	}
	defer rc.Close()
	xr, err := xz.NewReader(rc)
	if err != nil {
		return fmt.Errorf("embedded Postgres: %s: %w", jar, err)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".extract-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // empty after the rename
	// The server may run as another user: the tree must be readable by everyone.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(xr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("embedded Postgres: %s: %w", jar, err)
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("embedded Postgres: %s: entry %q leaves the tree", jar, h.Name)
		}
		target := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(target, tr, os.FileMode(h.Mode)&0o755|0o444); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if !filepath.IsLocal(filepath.Join(filepath.Dir(name), h.Linkname)) {
				return fmt.Errorf("embedded Postgres: %s: link %q → %q leaves the tree", jar, h.Name, h.Linkname)
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("embedded Postgres: %s: entry %q of unexpected type %c", jar, h.Name, h.Typeflag)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "bin", "pg_ctl")); err != nil {
		return fmt.Errorf("embedded Postgres: %s has no bin/pg_ctl", jar)
	}
	// Directories readable by everyone whatever the umask (MkdirAll applies it).
	err = filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o755)
	})
	if err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // the umask applied to OpenFile's mode
		f.Close()
		return err
	}
	return f.Close()
}
