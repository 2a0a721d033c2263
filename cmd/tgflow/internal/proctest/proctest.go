// Package proctest runs tgflow as production does, one process per service, against
// nats-server processes, for the tests that kill and restart them (cluster failover, fault
// runs). It builds the binaries from this module, starts and stops processes, and keeps
// each process's output in a file that a failing test prints.
package proctest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is what the helpers need of a test: *testing.T satisfies it, and so does a Runner, which
// runs the same code from a command (tgflow bench chaos).
type TB interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
	Error(args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// Build compiles the main package pkg (an import path, e.g. "github.com/tgflow/tgflow/cmd/tgflow"
// or "github.com/nats-io/nats-server/v2") into dir and returns the binary's path.
func Build(t TB, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(strings.TrimSuffix(pkg, "/v2")))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return out
}

// FreePort returns a loopback TCP port nothing listens on (now).
func FreePort(t TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is one process that can be killed and started again with the same command line.
type Proc struct {
	Name string
	Path string
	Args []string
	Env  []string
	// Log is the file the process's stdout and stderr go to (appended across restarts).
	Log string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// Starts counts the starts; Exits records each exit that was not asked for.
	Starts int
	Exits  []string
}

// NewProc prepares a process; Start runs it. Its log lives in dir.
func NewProc(t TB, dir, name, path string, args []string, env []string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Path: path, Args: args, Env: env, Log: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			p.DumpLog(t, 40)
			p.keepLog(t)
		}
	})
	return p
}

// Start starts the process (again).
func (p *Proc) Start(t TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		t.Fatalf("%s: already running", p.Name)
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n===== start %d at %s\n", p.Starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.Name, err)
	}
	p.Starts++
	p.cmd, p.done = cmd, make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		if p.cmd == cmd { // not stopped or killed by us
			p.Exits = append(p.Exits, fmt.Sprintf("exited by itself: %v", err))
			p.cmd = nil
		}
		p.mu.Unlock()
		close(done)
	}(cmd, p.done)
}

// Exited returns the exits that were not asked for, so far (safe while the process runs).
func (p *Proc) Exited() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.Exits...)
}

// Running reports whether the process runs (as far as this side knows).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, time.Minute) }

// Stop sends SIGTERM, then SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) { p.signal(syscall.SIGTERM, grace) }

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig) // an error means it is already gone; done tells
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill() // last resort; done follows
		<-done
	}
}

// DumpLog prints the last n lines of the process's log into the test output.
func (p *Proc) DumpLog(t TB, n int) {
	t.Helper()
	b, err := os.ReadFile(p.Log)
	if err != nil {
		t.Logf("%s: no log: %v", p.Name, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	t.Logf("----- %s (%s), last %d lines:\n%s", p.Name, p.Log, min(n, len(lines)), strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// keepLog copies the log out of the test's temporary dir (deleted after the test) into
// $TMPDIR/tgflow-proctest/<test>/, so a failure can be read in full.
func (p *Proc) keepLog(t TB) {
	dir := filepath.Join(os.TempDir(), "tgflow-proctest", strings.ReplaceAll(t.Name(), "/", "_"))
	b, err := os.ReadFile(p.Log)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		dst := filepath.Join(dir, filepath.Base(filepath.Dir(p.Log))+"-"+filepath.Base(p.Log))
		err = os.WriteFile(dst, b, 0o644)
		t.Logf("%s: full log kept in %s", p.Name, dst)
	}
	if err != nil {
		t.Logf("%s: keep the log: %v", p.Name, err)
	}
}

// Run runs path with args and env to completion and returns its combined output; a
// non-zero exit fails the test.
func Run(t TB, ctx context.Context, path string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(path), strings.Join(args, " "), err, out)
	}
	return string(out)
}
