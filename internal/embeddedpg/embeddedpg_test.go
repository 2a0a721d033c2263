package embeddedpg_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ulikunitz/xz"

	"github.com/tgflow/tgflow/internal/embeddedpg"
)

// reachableDir is a temp dir every user can enter (t.TempDir is mode 0700: as root the
// server's user could not reach a cluster inside it).
func reachableDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// stopLeftover stops, when the test ends, a server still running over dir: one a failing
// test left behind (its Close never ran) would outlive the test.
func stopLeftover(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(dir, "cluster", "data", "postmaster.pid"))
		if err != nil {
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil {
			return
		}
		if err := syscall.Kill(pid, syscall.SIGINT); err == nil { // fast shutdown
			t.Logf("stopped a server left running (pid %d)", pid)
		}
	})
}

func open(t *testing.T, o embeddedpg.Options) *embeddedpg.Server {
	t.Helper()
	s, err := embeddedpg.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func query(t *testing.T, url, sql string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// uidOf is the real uid of a process, from /proc.
func uidOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return 0
}

func postmasterPID(t *testing.T, s *embeddedpg.Server) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataPath(), "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// One cluster over a directory: started once, found by a second Open (which does not stop
// it), stopped by its starter, and started again with its data.
func TestOpenStartsFindsStopsAndReuses(t *testing.T) {
	dir := filepath.Join(reachableDir(t), "postgres")
	stopLeftover(t, dir)
	o := embeddedpg.Options{Dir: dir}
	first, err := embeddedpg.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Owned() {
		t.Fatal("the server this Open started is not owned by it")
	}
	exec(t, first.URL(), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
	if !strings.Contains(first.URL(), "@127.0.0.1:") || !strings.HasSuffix(first.URL(), "/"+embeddedpg.Database+"?sslmode=disable") {
		t.Fatalf("URL %s", first.URL())
	}
	b, err := os.ReadFile(embeddedpg.URLFile(dir))
	if err != nil || strings.TrimSpace(string(b)) != first.URL() {
		t.Fatalf("URL file = %q, %v", b, err)
	}

	pid := postmasterPID(t, first)
	if os.Geteuid() == 0 {
		u, err := user.Lookup(embeddedpg.DefaultOSUser)
		if err != nil {
			t.Fatal(err)
		}
		if got := strconv.Itoa(uidOf(t, pid)); got != u.Uid || first.RunsAs() != embeddedpg.DefaultOSUser {
			t.Fatalf("as root, the server runs as uid %s (%s), want %s's %s", got, first.RunsAs(), embeddedpg.DefaultOSUser, u.Uid)
		}
		fi, err := os.Stat(first.DataPath())
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Fatalf("PGDATA mode %v", fi.Mode())
		}
	} else if uidOf(t, pid) != os.Geteuid() {
		t.Fatalf("the server runs as uid %d, not as the caller", uidOf(t, pid))
	}

	second, err := embeddedpg.Open(context.Background(), embeddedpg.Options{Dir: dir, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	if second.Owned() || second.URL() != first.URL() {
		t.Fatalf("second Open: owned %v, URL %s; want the first's server, not owned", second.Owned(), second.URL())
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if n := query(t, first.URL(), "SELECT n FROM kept"); n != 42 {
		t.Fatalf("after the finder's Close: %d", n)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(first.DataPath(), "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("postmaster.pid after Close: %v", err)
	}
	if _, err := os.Stat(embeddedpg.URLFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("URL file after Close: %v", err)
	}

	again := open(t, embeddedpg.Options{Dir: dir, NoCreate: true})
	if n := query(t, again.URL(), "SELECT n FROM kept"); n != 42 {
		t.Fatalf("data after a restart: %d", n)
	}
}

// A server whose starter died is adopted: the next Open stops it when done.
func TestOrphanIsAdopted(t *testing.T) {
	dir := filepath.Join(reachableDir(t), "postgres")
	stopLeftover(t, dir)
	s, err := embeddedpg.Open(context.Background(), embeddedpg.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// The starter is gone (s is never closed): owner.pid names a pid that is not running.
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte("2147483646\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	adopter, err := embeddedpg.Open(context.Background(), embeddedpg.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !adopter.Owned() {
		t.Fatal("an orphan server was not adopted")
	}
	if err := adopter.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.DataPath(), "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the adopter did not stop the server: %v", err)
	}
}

func TestNoCreateNeedsACluster(t *testing.T) {
	_, err := embeddedpg.Open(context.Background(), embeddedpg.Options{Dir: filepath.Join(reachableDir(t), "pg"), NoCreate: true})
	if !errors.Is(err, embeddedpg.ErrNoCluster) {
		t.Fatalf("err = %v, want ErrNoCluster", err)
	}
}

// As root, a cluster under a directory the server's user cannot enter is refused with the
// directory and the ways out.
func TestUnreachableDirIsExplained(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	dir := filepath.Join(t.TempDir(), "postgres") // t.TempDir is 0700
	_, err := embeddedpg.Open(context.Background(), embeddedpg.Options{Dir: dir})
	top := filepath.Dir(filepath.Dir(dir)) // the testing package's 0700 directory
	if !errors.Is(err, embeddedpg.ErrUnreachable) || !strings.Contains(err.Error(), "cannot enter "+top+" ") || !strings.Contains(err.Error(), "--no-postgres") {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, top)
	}
}

// jar builds a zonky-like jar whose .txz holds the given tar entries.
func jar(t *testing.T, entries []tar.Header) []byte {
	t.Helper()
	var tb bytes.Buffer
	xw, err := xz.NewWriter(&tb)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(xw)
	for _, h := range entries {
		h.Size = 0
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := xw.Close(); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, err := zw.Create("postgres-linux-x86_64.txz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes()
}

// A download that is not the pinned build is refused and not cached; the request goes to
// the Maven layout of the pinned version.
func TestDownloadIsCheckedAgainstThePin(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if _, err := w.Write(jar(t, []tar.Header{{Name: "bin/pg_ctl", Typeflag: tar.TypeReg, Mode: 0o755}})); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	cache := t.TempDir()
	_, err := embeddedpg.Open(context.Background(), embeddedpg.Options{Dir: filepath.Join(reachableDir(t), "pg"), CacheDir: cache, Repository: srv.URL})
	if !errors.Is(err, embeddedpg.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	if len(paths) != 1 || !strings.HasPrefix(paths[0], "/io/zonky/test/postgres/embedded-postgres-binaries-linux-") || !strings.Contains(paths[0], "/"+embeddedpg.Version+"/") {
		t.Fatalf("requests %v", paths)
	}
	left, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if e.Name() != "lock" {
			t.Errorf("cache after a refused download holds %s", e.Name())
		}
	}
}

// Entries that would land outside the runtime directory are refused.
func TestExtractRefusesEntriesLeavingTheTree(t *testing.T) {
	tests := []struct {
		name  string
		entry tar.Header
	}{
		{name: "parent path", entry: tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		{name: "absolute path", entry: tar.Header{Name: "/tmp/evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		{name: "symlink out", entry: tar.Header{Name: "lib/x.so", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "rt")
			err := embeddedpg.ExtractJar(jar(t, []tar.Header{tc.entry}), dest)
			if err == nil || !strings.Contains(err.Error(), "leaves the tree") {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists after a refused extraction", dest)
			}
		})
	}
}
