// Package servertest runs nats-server from the committed nats.conf for tests: every user of
// nats/server with a known password, and every permission violation the server logs kept,
// so that a test can run a service under its user and show it was refused nothing.
package servertest

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tgflow/tgflow/nats/server"
)

// Server is a running nats-server configured by nats.conf.
type Server struct {
	*natsserver.Server
	log *violationLog
}

// ConfPath is the path of the committed nats.conf.
func ConfPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "nats.conf")
}

// Password is the password Start gives user.
func Password(user string) string { return user + "-test-pw" }

// Start runs the server on a loopback port with a temporary store until the test ends. It
// sets the password variables of every user (so the test may not run in parallel).
func Start(t *testing.T) *Server {
	t.Helper()
	for _, u := range server.Users() {
		t.Setenv(u.PasswordVar(), Password(u.Name))
	}
	opts, err := natsserver.ProcessConfigFile(ConfPath())
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	opts.Trace, opts.MaxTracedMsgLen = true, 1 // Published: the subjects each user publishes
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	vl := &violationLog{}
	s.SetLoggerV2(vl, false, true, false)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server from nats.conf not ready")
	}
	t.Cleanup(s.Shutdown)
	return &Server{Server: s, log: vl}
}

// URL is the client URL with user's credentials in it (as TGFLOW_NATS_URL carries them).
func (s *Server) URL(user string) string {
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		panic(fmt.Sprintf("servertest: client URL %q: %v", s.ClientURL(), err))
	}
	u.User = url.UserPassword(user, Password(user))
	return u.String()
}

// Published returns the subjects each user has published to so far (the JetStream API
// calls among them), each once, by user.
func (s *Server) Published() map[string][]string { return s.log.published() }

// Violations returns every permission violation logged so far, one line each (the line
// names the connection, whose name is tgflow-<service> for a tgflow command).
func (s *Server) Violations() []string { return s.log.lines() }

type violationLog struct {
	mu   sync.Mutex
	out  []string
	pubs map[string]map[string]bool // user → subjects
}

// pubTrace matches a traced publish: `… - "ACCOUNT/user:NAME" - <<- [PUB subject …]`.
var pubTrace = regexp.MustCompile(`"[^"/]+/user:([^"]+)" - <<- \[H?PUB (\S+)`)

func (l *violationLog) published() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for u, subjects := range l.pubs {
		for s := range subjects {
			out[u] = append(out[u], s)
		}
		sort.Strings(out[u])
	}
	return out
}

func (l *violationLog) Tracef(format string, v ...any) {
	if !strings.HasPrefix(format, "<<- ") && !strings.Contains(format, "<<- ") {
		return
	}
	m := pubTrace.FindStringSubmatch(fmt.Sprintf(format, v...))
	if m == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pubs == nil {
		l.pubs = map[string]map[string]bool{}
	}
	if l.pubs[m[1]] == nil {
		l.pubs[m[1]] = map[string]bool{}
	}
	l.pubs[m[1]][m[2]] = true
}

func (l *violationLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.out...)
}

func (l *violationLog) keep(format string, v []any) {
	line := fmt.Sprintf(format, v...)
	if !strings.Contains(line, "Violation") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = append(l.out, line)
}

func (l *violationLog) Noticef(string, ...any)         {}
func (l *violationLog) Debugf(string, ...any)          {}
func (l *violationLog) Warnf(format string, v ...any)  { l.keep(format, v) }
func (l *violationLog) Fatalf(format string, v ...any) { l.keep(format, v) }
func (l *violationLog) Errorf(format string, v ...any) { l.keep(format, v) }
