// Package embeddedpg runs the Postgres server of laptop mode: a cluster of its own under the
// data dir, from the pinned PostgreSQL build published on Maven Central
// (io.zonky.test.postgres:embedded-postgres-binaries-linux-<arch>), downloaded once into a
// cache and checked against a pinned sha256.
//
// Postgres refuses to run as root. When the caller is root, initdb, pg_ctl and the server run
// as an unprivileged system user (Config.OSUser, created with useradd when missing) that owns
// the cluster's files; otherwise they run as the caller.
//
// Layout of Options.Dir (usually <data dir>/postgres):
//
//	runtime-<Version>/   the extracted binaries (bin, lib, share), readable by everyone
//	cluster/data/        PGDATA, owned by the server's user, mode 0700
//	cluster/server.log   the server's log
//	password             the superuser's password (mode 0600)
//	postgres.url         the URL of the running server, while it runs (mode 0600)
//	owner.pid            the process that started the running server and will stop it
//	lock                 serialises Open between processes
//
// Open finds the server a process (for instance `tgflow dev`) already runs over the same
// directory, or starts one; only the process that started a server stops it (Close), and a
// server whose starter died is adopted by the next Open.
package embeddedpg

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sentinel errors; each returned error wraps one of them or an error of the OS.
var (
	ErrUnsupported = errors.New("embedded Postgres is not available on this platform")
	ErrDownload    = errors.New("embedded Postgres: download failed")
	ErrChecksum    = errors.New("embedded Postgres: the download is not the pinned build")
	ErrUnreachable = errors.New("embedded Postgres: the server's user cannot reach its directory")
	ErrNoCluster   = errors.New("embedded Postgres: no cluster in this data dir yet")
	ErrStart       = errors.New("embedded Postgres: the server did not start")
	ErrOwnership   = errors.New("embedded Postgres: the cluster belongs to another user")
)

const (
	// Database is the database the read models live in.
	Database = "tgflow"
	// Superuser is the cluster's superuser.
	Superuser = "tgflow"
	// DefaultOSUser is the system user the server runs as when the caller is root.
	DefaultOSUser = "tgflow-pg"
)

// Config is laptop mode's embedded Postgres settings, read from the environment.
type Config struct {
	Cache  string `env:"TGFLOW_POSTGRES_CACHE" help:"laptop mode: directory of the downloaded Postgres build (default: tgflow/postgres in the user cache dir, e.g. ~/.cache/tgflow/postgres; without HOME: <data dir>/postgres/cache)"`
	OSUser string `env:"TGFLOW_POSTGRES_OS_USER" envDefault:"tgflow-pg" help:"laptop mode, run as root: the system user the embedded Postgres runs as (created with useradd when missing)"`
}

// Validate checks Config.
func (c *Config) Validate() error {
	if c.OSUser == "" || c.OSUser == "root" {
		return fmt.Errorf("env: TGFLOW_POSTGRES_OS_USER: %q cannot run Postgres (it refuses root)", c.OSUser)
	}
	return nil
}

// Options says where the cluster lives and how to get the binaries.
type Options struct {
	Dir        string // the cluster's directory (see the package doc)
	CacheDir   string // the downloaded build; empty: DefaultCacheDir(), or Dir/cache without one
	OSUser     string // the server's user when the caller is root; empty: DefaultOSUser
	Repository string // Maven repository; empty: MavenCentral
	// NoCreate makes Open use only an existing cluster (ErrNoCluster otherwise): for commands
	// that read, so that they don't create an empty database.
	NoCreate bool
	Logger   *slog.Logger
}

// DefaultCacheDir is tgflow/postgres in the user cache dir (XDG_CACHE_HOME or ~/.cache); an
// error when there is neither.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("embedded Postgres: no user cache dir (set TGFLOW_POSTGRES_CACHE): %w", err)
	}
	return filepath.Join(d, "tgflow", "postgres"), nil
}

// Server is a running embedded Postgres.
type Server struct {
	url   string
	port  int
	owned bool
	dir   string
	run   *runner
	log   *slog.Logger
}

// URL is the server's connection URL (it holds the password: never print it unredacted).
func (s *Server) URL() string { return s.url }

// Port is the server's loopback port.
func (s *Server) Port() int { return s.port }

// Owned says whether this process started (or adopted) the server, so Close stops it.
func (s *Server) Owned() bool { return s.owned }

// RunsAs is the name of the OS user the server runs as.
func (s *Server) RunsAs() string { return s.run.name }

// DataPath is the cluster's PGDATA.
func (s *Server) DataPath() string { return dataDir(s.dir) }

func runtimeDir(dir string) string { return filepath.Join(dir, "runtime-"+Version) }
func clusterDir(dir string) string { return filepath.Join(dir, "cluster") }
func dataDir(dir string) string    { return filepath.Join(dir, "cluster", "data") }
func logPath(dir string) string    { return filepath.Join(dir, "cluster", "server.log") }

// URLFile is where the running server's URL is written.
func URLFile(dir string) string { return filepath.Join(dir, "postgres.url") }

// Open returns the server running over o.Dir, starting it when none runs (fetching the
// binaries and creating the cluster when needed, unless o.NoCreate).
func Open(ctx context.Context, o Options) (*Server, error) {
	if o.OSUser == "" {
		o.OSUser = DefaultOSUser
	}
	if o.Repository == "" {
		o.Repository = MavenCentral
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = DefaultCacheDir(); err != nil {
			// No HOME nor XDG_CACHE_HOME: keep the download with the cluster.
			o.CacheDir = filepath.Join(dir, "cache")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded Postgres: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the server's user goes through it
		return nil, fmt.Errorf("embedded Postgres: %w", err)
	}
	unlock, err := lock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	r, err := newRunner(dir, o.OSUser)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, run: r, log: o.Logger}
	pw, pwErr := os.ReadFile(filepath.Join(dir, "password"))
	if pid, port, ok := running(dir); ok && pwErr == nil {
		s.port, s.url = port, connURL(strings.TrimSpace(string(pw)), port)
		if err := ping(ctx, s.url); err != nil {
			return nil, fmt.Errorf("%w: a server (pid %d) runs over %s but does not answer: %w", ErrStart, pid, dataDir(dir), err)
		}
		if owner, err := readPID(filepath.Join(dir, "owner.pid")); err != nil || !alive(owner) {
			// Its starter is gone (killed): this process stops it when done.
			s.owned = true
			if err := writeOwner(dir); err != nil {
				return nil, err
			}
			o.Logger.Info("embedded Postgres: adopted a server whose starter is gone", "pid", pid, "port", port)
		}
		return s, nil
	}
	if _, err := os.Stat(filepath.Join(dataDir(dir), "PG_VERSION")); err != nil && o.NoCreate {
		return nil, fmt.Errorf("%w (%s): `tgflow dev` creates it", ErrNoCluster, dir)
	}
	if err := r.reachable(dir); err != nil {
		return nil, err
	}
	if err := ensureBinaries(ctx, dir, o); err != nil {
		return nil, err
	}
	if err := ensureCluster(ctx, dir, r, o.Logger); err != nil {
		return nil, err
	}
	pw, err = os.ReadFile(filepath.Join(dir, "password"))
	if err != nil {
		return nil, fmt.Errorf("embedded Postgres: the cluster's password: %w", err)
	}
	if err := s.start(ctx, strings.TrimSpace(string(pw))); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the server when this process owns it.
func (s *Server) Close() error {
	if s == nil || !s.owned {
		return nil
	}
	s.owned = false
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := s.run.command(ctx, filepath.Join(runtimeDir(s.dir), "bin", "pg_ctl"), "stop", "-D", dataDir(s.dir), "-m", "fast", "-w", "-t", "60").CombinedOutput()
	if err != nil {
		return fmt.Errorf("embedded Postgres: stop: %w: %s", err, bytes.TrimSpace(out))
	}
	for _, f := range []string{URLFile(s.dir), filepath.Join(s.dir, "owner.pid")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("embedded Postgres: stopped, but %w", err)
		}
	}
	s.log.Info("embedded Postgres stopped", "data", dataDir(s.dir))
	return nil
}

func (s *Server) start(ctx context.Context, password string) error {
	pgctl := filepath.Join(runtimeDir(s.dir), "bin", "pg_ctl")
	var lastErr error
	for range 3 { // the free port may be taken between the probe and the server's bind
		port, err := freePort()
		if err != nil {
			return err
		}
		opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", port)
		cmd := s.run.command(ctx, pgctl, "start", "-D", dataDir(s.dir), "-l", logPath(s.dir), "-w", "-t", "60", "-s", "-o", opts)
		out, err := cmd.CombinedOutput()
		if err == nil {
			s.port, s.url, s.owned = port, connURL(password, port), true
			break
		}
		lastErr = fmt.Errorf("%w: %w: %s\n%s", ErrStart, err, bytes.TrimSpace(out), tail(logPath(s.dir), 20))
		if !strings.Contains(lastErr.Error(), "could not bind") && !strings.Contains(lastErr.Error(), "already in use") {
			return lastErr
		}
	}
	if !s.owned {
		return lastErr
	}
	if err := writeOwner(s.dir); err != nil {
		return errors.Join(err, s.Close())
	}
	if err := os.WriteFile(URLFile(s.dir), []byte(s.url+"\n"), 0o600); err != nil {
		return errors.Join(fmt.Errorf("embedded Postgres: record the URL: %w", err), s.Close())
	}
	if err := ensureDatabase(ctx, password, s.port); err != nil {
		return errors.Join(err, s.Close())
	}
	s.log.Info("embedded Postgres started", "port", s.port, "user", s.run.name, "data", dataDir(s.dir), "version", Version)
	return nil
}

func connURL(password string, port int) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, password, port, Database)
}

// ensureBinaries puts the binaries under dir: linked (or copied) from the tree extracted once
// into the cache, extracted there from the pinned jar when missing. The cache may sit where
// the server's user cannot go (root's home); the copy under dir is what runs.
func ensureBinaries(ctx context.Context, dir string, o Options) error {
	rt := runtimeDir(dir)
	if _, err := os.Stat(filepath.Join(rt, "bin", "pg_ctl")); err == nil {
		return nil
	}
	tree, err := cachedTree(ctx, o)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(rt); err != nil {
		return err
	}
	return cloneTree(tree, rt)
}

// cachedTree is the extracted build in the cache, extracted from the cached (or downloaded)
// jar when missing.
func cachedTree(ctx context.Context, o Options) (string, error) {
	arch, err := jarArch()
	if err != nil {
		return "", err
	}
	tree := filepath.Join(o.CacheDir, "postgres-"+Version+"-linux-"+arch)
	if _, err := os.Stat(filepath.Join(tree, "bin", "pg_ctl")); err == nil {
		return tree, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("embedded Postgres: cache dir: %w", err)
	}
	unlock, err := lock(filepath.Join(o.CacheDir, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(tree, "bin", "pg_ctl")); err == nil { // another process did it
		return tree, nil
	}
	jar, err := fetchJar(ctx, o.Repository, o.CacheDir, func(msg string, args ...any) { o.Logger.Info(msg, args...) })
	if err != nil {
		return "", err
	}
	o.Logger.Info("embedded Postgres: extracting the binaries into the cache (once)", "dir", tree)
	if err := os.RemoveAll(tree); err != nil {
		return "", err
	}
	if err := extract(jar, tree); err != nil {
		return "", err
	}
	return tree, nil
}

// cloneTree copies the tree src to dst through a temporary directory, hard-linking files
// where it can.
func cloneTree(src, dst string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".runtime-*")
	if err != nil {
		return fmt.Errorf("embedded Postgres: %w", err)
	}
	defer os.RemoveAll(tmp) // empty after the rename
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(tmp, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			if os.Link(p, target) == nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return writeFile(target, f, fi.Mode().Perm())
		}
	})
	if err != nil {
		return fmt.Errorf("embedded Postgres: copy the binaries to %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("embedded Postgres: %w", err)
	}
	return nil
}

// ensureCluster runs initdb unless the cluster exists.
func ensureCluster(ctx context.Context, dir string, r *runner, log *slog.Logger) error {
	data := dataDir(dir)
	if v, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil {
		if major := strings.TrimSpace(string(v)); !strings.HasPrefix(Version, major+".") {
			return fmt.Errorf("embedded Postgres: %s holds a Postgres %s cluster; this build runs %s (move it away, or set TGFLOW_POSTGRES_URL)", data, major, Version)
		}
		return nil
	}
	cl := clusterDir(dir)
	if err := os.MkdirAll(cl, 0o700); err != nil {
		return err
	}
	// An initdb cut short leaves a partial PGDATA; initdb wants it gone.
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := r.own(cl); err != nil {
		return err
	}
	pwPath := filepath.Join(dir, "password")
	pw, err := os.ReadFile(pwPath)
	if err != nil {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		pw = []byte(hex.EncodeToString(b))
		if err := os.WriteFile(pwPath, pw, 0o600); err != nil {
			return fmt.Errorf("embedded Postgres: %w", err)
		}
	}
	// initdb reads the password from a file its user can read; removed once it is done.
	pwFile := filepath.Join(cl, "pwfile")
	if err := os.WriteFile(pwFile, bytes.TrimSpace(pw), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwFile)
	if err := r.own(pwFile); err != nil {
		return err
	}
	log.Info("embedded Postgres: creating the cluster", "data", data, "user", r.name)
	out, err := r.command(ctx, filepath.Join(runtimeDir(dir), "bin", "initdb"),
		"-D", data, "-U", Superuser, "--pwfile="+pwFile, "-A", "scram-sha-256",
		"-E", "UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("embedded Postgres: initdb as %s: %w: %s", r.name, err, bytes.TrimSpace(out))
	}
	return nil
}

func ensureDatabase(ctx context.Context, password string, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", Superuser, password, port))
	if err != nil {
		return fmt.Errorf("embedded Postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return fmt.Errorf("embedded Postgres: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()); err != nil {
			return fmt.Errorf("embedded Postgres: create database %s: %w", Database, err)
		}
	}
	return nil
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// running reads PGDATA/postmaster.pid: the server's pid and port, when that process lives.
func running(dir string) (pid, port int, ok bool) {
	f, err := os.Open(filepath.Join(dataDir(dir), "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(lines[0])
	port, err2 := strconv.Atoi(lines[3])
	if err1 != nil || err2 != nil || !alive(pid) {
		return 0, 0, false
	}
	return pid, port, true
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func writeOwner(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("embedded Postgres: record the owner: %w", err)
	}
	return nil
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("embedded Postgres: no free loopback port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// tail returns the last n lines of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lock takes an exclusive lock on path, held until the returned func is called.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded Postgres: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("embedded Postgres: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// runner runs the Postgres programs as the server's user.
type runner struct {
	name     string
	uid, gid int
	cred     *syscall.Credential // nil: as this process
}

// newRunner picks the server's user: this process's when it is not root; as root, the owner
// of an existing cluster when that is not root, or else osUser (created when missing).
func newRunner(dir, osUser string) (*runner, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		name := strconv.Itoa(os.Geteuid())
		if err == nil {
			name = u.Username
		}
		if fi, err := os.Stat(clusterDir(dir)); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
				return nil, fmt.Errorf("%w: %s is owned by uid %d (it was created as root, running as that uid); run as root, or set TGFLOW_POSTGRES_URL or --data-dir", ErrOwnership, clusterDir(dir), st.Uid)
			}
		}
		return &runner{name: name, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	if fi, err := os.Stat(clusterDir(dir)); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			name := strconv.Itoa(int(st.Uid))
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			return &runner{name: name, uid: int(st.Uid), gid: int(st.Gid),
				cred: &syscall.Credential{Uid: st.Uid, Gid: st.Gid, Groups: []uint32{}}}, nil
		}
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return nil, fmt.Errorf("embedded Postgres: look up user %s: %w", osUser, err)
		}
		out, cerr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", osUser).CombinedOutput()
		if cerr != nil {
			return nil, fmt.Errorf("embedded Postgres: running as root, the server needs an unprivileged user; creating %s failed (%w: %s): create it, or set TGFLOW_POSTGRES_OS_USER", osUser, cerr, bytes.TrimSpace(out))
		}
		if u, err = user.Lookup(osUser); err != nil {
			return nil, fmt.Errorf("embedded Postgres: user %s: %w", osUser, err)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("embedded Postgres: user %s has ids %s:%s", osUser, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("embedded Postgres: user %s is root, which Postgres refuses (set TGFLOW_POSTGRES_OS_USER)", osUser)
	}
	return &runner{name: u.Username, uid: uid, gid: gid,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}, nil
}

// command is a Postgres program run as the server's user, in a process group of its own (a
// Ctrl-C meant for tgflow must not reach the server: tgflow stops it in order), with a
// minimal environment.
func (r *runner) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + filepath.Dir(filepath.Dir(path))}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: r.cred}
	return cmd
}

// own gives path to the server's user.
func (r *runner) own(path string) error {
	if r.cred == nil {
		return nil
	}
	if err := os.Chown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("embedded Postgres: give %s to %s: %w", path, r.name, err)
	}
	return nil
}

// reachable checks that the server's user can enter every directory down to dir: Postgres
// runs its binaries and opens its data by absolute path.
func (r *runner) reachable(dir string) error {
	if r.cred == nil {
		return nil
	}
	var chain []string // from the root down to dir: report the first directory that stops it
	for p := dir; ; p = filepath.Dir(p) {
		chain = append([]string{p}, chain...)
		if p == filepath.Dir(p) {
			break
		}
	}
	for _, p := range chain {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		mode := fi.Mode().Perm()
		var can bool
		switch {
		case int(st.Uid) == r.uid:
			can = mode&0o100 != 0
		case int(st.Gid) == r.gid:
			can = mode&0o010 != 0
		default:
			can = mode&0o001 != 0
		}
		if !can {
			return fmt.Errorf("%w: running as root, the server runs as %s, which cannot enter %s (mode %04o, uid %d): use a data dir it can reach (--data-dir or TGFLOW_DATA_DIR), set TGFLOW_POSTGRES_URL, or pass --no-postgres", ErrUnreachable, r.name, p, mode, st.Uid)
		}
	}
	return nil
}

// PostmasterPID is the process id of the server running in dir (the Dir of Options), if one
// runs: its backends are its children (tgflow bench dev adds up their memory).
func PostmasterPID(dir string) (pid int, ok bool) {
	pid, _, ok = running(dir)
	return pid, ok
}
