package projsvc

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// NewProgress returns a progress bar (facts, facts/s, ETA) when w is a terminal, and
// periodic log lines otherwise.
func NewProgress(w io.Writer, what string, log *slog.Logger) Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: w, what: what}
	}
	return &logProgress{log: log, what: what, every: 5 * time.Second}
}

type barProgress struct {
	w    io.Writer
	what string
	bar  *progressbar.ProgressBar
}

func (p *barProgress) Start(total uint64) {
	p.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.what),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("facts"),
		progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionFullWidth())
}

func (p *barProgress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *barProgress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_, _ = io.WriteString(p.w, "\n")
	}
}

type logProgress struct {
	mu         sync.Mutex
	log        *slog.Logger
	what       string
	every      time.Duration
	total      uint64
	done       uint64
	start, out time.Time
}

func (p *logProgress) Start(total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.done, p.start, p.out = total, 0, time.Now(), time.Now()
	p.log.Info(p.what+": replay started", "facts", total)
}

func (p *logProgress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += uint64(n)
	if time.Since(p.out) >= p.every {
		p.out = time.Now()
		p.line("replaying")
	}
}

func (p *logProgress) line(msg string) {
	el := time.Since(p.start).Seconds()
	rate := float64(p.done) / max(el, 1e-9)
	var eta time.Duration
	if rate > 0 && p.total > p.done {
		eta = time.Duration(float64(p.total-p.done)/rate) * time.Second
	}
	p.log.Info(p.what+": "+msg, "facts", p.done, "of", p.total, "facts_per_s", int(rate), "eta", eta.Round(time.Second))
}

func (p *logProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line("replay done")
}
