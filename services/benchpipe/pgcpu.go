package benchpipe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The Postgres server's CPU time is not the bench process's: posts/cpu-s leaves it out,
// although on one machine the server takes its cores from the same pool. When the server
// runs on this machine (its processes are in /proc), a run also reports the CPU time of the
// whole server over the throughput phase: the postmaster and its children (backends,
// WAL writer, checkpointer, autovacuum), those that exited included (the postmaster's
// cutime/cstime). Other clients of the same server count too: on a shared server the figure
// is an upper bound.

// serverCPU reads the CPU time of a local Postgres server.
type serverCPU struct {
	postmaster int
}

// newServerCPU finds the postmaster of the backend serving one of pool's connections; false
// where it cannot be read (a remote server, no /proc).
func newServerCPU(ctx context.Context, pool *pgxpool.Pool) (*serverCPU, bool) {
	var pid int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return nil, false
	}
	st, ok := procStat(pid)
	if !ok {
		return nil, false // not a process of this machine (or not visible)
	}
	return &serverCPU{postmaster: st.ppid}, true
}

// read returns the server's CPU time so far.
func (s *serverCPU) read() (time.Duration, bool) {
	pm, ok := procStat(s.postmaster)
	if !ok {
		return 0, false
	}
	total := pm.self + pm.children
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, false
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == s.postmaster {
			total += st.self
		}
	}
	return total, true
}

type stat struct {
	ppid           int
	self, children time.Duration // utime+stime; cutime+cstime (children waited for)
}

// procStat reads /proc/<pid>/stat.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return stat{}, false
	}
	// After the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+2:])
	if len(f) < 15 {
		return stat{}, false
	}
	var v [18]int64
	for _, k := range []int{4, 14, 15, 16, 17} {
		n, err := strconv.ParseInt(f[k-3], 10, 64)
		if err != nil {
			return stat{}, false
		}
		v[k] = n
	}
	const tick = time.Second / 100 // USER_HZ is 100 on Linux
	return stat{ppid: int(v[4]), self: time.Duration(v[14]+v[15]) * tick, children: time.Duration(v[16]+v[17]) * tick}, true
}
