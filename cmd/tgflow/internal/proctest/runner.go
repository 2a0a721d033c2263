package proctest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
)

// PageServer serves the pages the corpus links to (an article per path, robots.txt allowing
// everything) on loopback; the caller closes it.
func PageServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			fmt.Fprintln(w, "User-agent: *\nAllow: /")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>Статья %s</title></head><body><article><h1>Статья %[1]s</h1><p>%s</p></article></body></html>",
			r.URL.Path, strings.Repeat("Текст статьи о журнале фактов и отказоустойчивости. Article text about fault tolerance. ", 20))
	}))
}

// Runner runs the helpers outside a test (tgflow bench chaos, through RunOutside): Fatal stops the run, Error
// marks it failed, Log writes to Out, and the cleanups run when Run returns.
type Runner struct {
	Out  io.Writer
	Dir  string
	name string

	mu       sync.Mutex
	failed   bool
	errs     []string
	cleanups []func()
	dirs     int
}

// ErrFailed is returned by Run when the run reported errors.
var ErrFailed = errors.New("run failed")

type fatal struct{ msg string }

// RunOutside runs fn with a Runner named name whose temporary dirs live under dir; it returns the
// run's errors (ErrFailed with every message), after running the cleanups in reverse order.
func RunOutside(name, dir string, out io.Writer, fn func(r *Runner)) (err error) {
	r := &Runner{Out: out, Dir: dir, name: name}
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			r.errs = append(r.errs, f.msg)
			r.failed = true
		}
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i]()
		}
		if r.failed {
			err = fmt.Errorf("%w:\n%s", ErrFailed, strings.Join(r.errs, "\n"))
		}
	}()
	fn(r)
	return nil
}

func (r *Runner) Helper()      {}
func (r *Runner) Name() string { return r.name }
func (r *Runner) Logf(format string, args ...any) {
	fmt.Fprintf(r.Out, format+"\n", args...)
}
func (r *Runner) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }
func (r *Runner) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.errs = append(r.errs, fmt.Sprint(args...))
	fmt.Fprintln(r.Out, "ERROR:", fmt.Sprint(args...))
}
func (r *Runner) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }
func (r *Runner) Fatal(args ...any)                 { panic(fatal{fmt.Sprint(args...)}) }
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
func (r *Runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// TempDir is a new directory under the runner's Dir, kept after the run (its logs).
func (r *Runner) TempDir() string {
	r.mu.Lock()
	r.dirs++
	n := r.dirs
	r.mu.Unlock()
	d := fmt.Sprintf("%s/%03d", r.Dir, n)
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.Fatal(err)
	}
	return d
}
