package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything doctor found. Healthy is false when any problem is a fail.
type Report struct {
	Time       time.Time  `json:"time"`
	Healthy    bool       `json:"healthy"`
	Thresholds Thresholds `json:"thresholds"`
	Consumers  []Consumer `json:"consumers"`
	// EphemeralReaders counts ordered readers on the log (they expire by themselves).
	EphemeralReaders int          `json:"ephemeral_readers"`
	DLQ              DLQ          `json:"dlq"`
	Stuck            []Stuck      `json:"stuck"`
	StuckTruncated   []string     `json:"stuck_truncated,omitempty"`
	Streams          []Stream     `json:"streams"`
	Storage          Storage      `json:"storage"`
	Channels         []Channel    `json:"channels"`
	Projections      []Projection `json:"projections"`
	Problems         []Problem    `json:"problems"`
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return enc.Encode(r)
}

func ts(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return round(now.Sub(*t)).String() + " ago"
}

// WriteText writes the report for a terminal: one section per check, then the problems and
// the verdict.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("CONSUMER\tSTATE\tPENDING\tACK PENDING\tREDELIVERED\tWAITING\tACK FLOOR\tLAST DELIVERY\tLAST ACK\n")
	for _, c := range r.Consumers {
		if !c.Exists {
			p("%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", c.Name, strings.Join(c.States, ","))
			continue
		}
		p("%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, strings.Join(c.States, ","), c.Pending, c.AckPending, c.Redelivered, c.Waiting, c.AckFloor,
			ts(c.LastDelivery, r.Time), ts(c.LastAck, r.Time))
	}
	p("(%d ephemeral reader(s))\n\n", r.EphemeralReaders)

	p("DLQ\tCLASS\tCOUNT\tNEWEST\n")
	for _, g := range r.DLQ.Groups {
		p("%s\t%s\t%d\t%s\n", g.Consumer, g.Class, g.Count, ts(&g.Newest, r.Time))
	}
	p("(%d dead letter(s))\n\n", r.DLQ.Total)

	if len(r.Stuck) > 0 {
		p("STUCK POST\tMISSING STEP\tFACT\tSEQ\tSTORED\n")
		for _, s := range r.Stuck {
			p("%s\t%s\t%s\t%d\t%s\n", s.Key, s.Step, s.Type, s.Seq, ts(&s.StoredAt, r.Time))
		}
		if len(r.StuckTruncated) > 0 {
			p("(more stuck facts at %s: raise --max-stuck)\n", strings.Join(r.StuckTruncated, ", "))
		}
		p("\n")
	} else {
		p("stuck posts: none older than %s\n\n", r.Thresholds.StuckAfter)
	}

	p("STREAM\tMSGS\tBYTES\tLAST SEQ\tMAX MSGS\tMAX BYTES\n")
	for _, s := range r.Streams {
		p("%s\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Msgs, s.Bytes, s.LastSeq, limit(s.MaxMsgs), limit(s.MaxBytes))
	}
	p("account store: %d bytes of %s", r.Storage.Store, limit(r.Storage.MaxStore))
	if r.Storage.Disk != nil {
		p("; disk at %s: %d of %d bytes free", r.Storage.Disk.Path, r.Storage.Disk.Free, r.Storage.Disk.Total)
	}
	p("\n\n")

	if len(r.Channels) > 0 {
		p("CHANNEL\tLAST SYNC\tNEW\tLAST ERROR\tERROR AT\n")
		for _, c := range r.Channels {
			p("%s\t%s\t%d\t%s\t%s\n", c.Channel, ts(c.LastSync, r.Time), c.LastNew, dash(c.LastError), ts(c.LastErrorAt, r.Time))
		}
		p("\n")
	} else {
		p("channels: no channels.synced or channels.failed fact on the log\n\n")
	}

	p("PROJECTION\tCHECKPOINT\tLOG HEAD\tACK FLOOR\tPENDING\n")
	for _, pr := range r.Projections {
		cp := "-"
		switch {
		case pr.Err != "":
			cp = "error"
		case pr.Configured:
			cp = fmt.Sprint(pr.Checkpoint)
		}
		if !pr.ConsumerExists {
			p("%s\t%s\t%d\t-\t-\n", pr.Consumer, cp, pr.Head)
			continue
		}
		p("%s\t%s\t%d\t%d\t%d\n", pr.Consumer, cp, pr.Head, pr.AckFloor, pr.Pending)
	}
	p("\n")
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, pr := range r.Problems {
		fmt.Fprintf(w, "%s %s %s: %s\n", strings.ToUpper(string(pr.Severity)), pr.Check, pr.Subject, pr.Message)
	}
	verdict := "healthy"
	if !r.Healthy {
		verdict = "unhealthy"
	}
	_, err := fmt.Fprintf(w, "status: %s (%d problem(s))\n", verdict, len(r.Problems))
	return err
}

func limit(n int64) string {
	if n <= 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
