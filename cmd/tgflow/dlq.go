package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

// dlqFilter selects dead letters by consumer, class and age (the time they were dead-lettered).
type dlqFilter struct {
	consumer  string
	class     string
	olderThan time.Duration // 0: any
	newerThan time.Duration // 0: any
}

func (f dlqFilter) match(d worker.DeadLetter, now time.Time) bool {
	switch {
	case f.consumer != "" && d.Consumer != f.consumer:
		return false
	case f.class != "" && string(d.Class) != f.class:
		return false
	case f.olderThan > 0 && (d.Time.IsZero() || now.Sub(d.Time) < f.olderThan):
		return false
	case f.newerThan > 0 && (d.Time.IsZero() || now.Sub(d.Time) > f.newerThan):
		return false
	}
	return true
}

var dlqClasses = []string{string(worker.ClassDecode), string(worker.ClassPermanent), string(worker.ClassExhausted)}

// list returns the dead letters f selects, oldest first, at most limit (0: all).
func (f dlqFilter) list(ctx context.Context, js jetstream.JetStream, limit int) ([]worker.DeadLetter, error) {
	if f.class != "" && !slices.Contains(dlqClasses, f.class) {
		return nil, fmt.Errorf("%w: --class %q is not one of %v", errUsage, f.class, dlqClasses)
	}
	all, err := worker.ListDeadLetters(ctx, js, f.consumer, 0)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []worker.DeadLetter
	for _, d := range all {
		if f.match(d, now) && (limit <= 0 || len(out) < limit) {
			out = append(out, d)
		}
	}
	return out, nil
}

func runDLQ(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tgflow dlq ls | show SEQ | replay SEQ…|--all | drop SEQ…|--consumer C --older-than D", errUsage)
	}
	sub := args[0]
	fs := newFlags("dlq "+sub, a)
	var f dlqFilter
	fs.StringVar(&f.consumer, "consumer", "", "only this consumer's dead letters")
	fs.StringVar(&f.class, "class", "", "only this class: decode, permanent or exhausted")
	fs.DurationVar(&f.olderThan, "older-than", 0, "only dead letters older than this (e.g. 24h)")
	fs.DurationVar(&f.newerThan, "newer-than", 0, "only dead letters newer than this")
	asJSON := fs.Bool("json", false, "JSON output")
	all := fs.Bool("all", false, "replay: every selected dead letter")
	limit := fs.Int("limit", 0, "at most this many entries (0: all)")
	yes := fs.Bool("yes", false, "drop: really delete (without it, drop lists what it would delete)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	seqs, err := parseSeqs(fs.Args())
	if err != nil {
		return err
	}
	switch sub {
	case "ls", "show", "replay", "drop":
	default:
		return fmt.Errorf("%w: unknown dlq subcommand %q", errUsage, sub)
	}
	if sub == "show" && len(seqs) != 1 {
		return fmt.Errorf("%w: tgflow dlq show SEQ", errUsage)
	}
	if sub == "drop" {
		// Drop names what it deletes: sequences, or a consumer and an age (0s: any age).
		bySelection := set["consumer"] && set["older-than"]
		if (len(seqs) > 0) == bySelection {
			return fmt.Errorf("%w: tgflow dlq drop SEQ… | --consumer C --older-than D [--class X] (one of the two)", errUsage)
		}
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	c, err := connect(ctx, b, "dlq", log)
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "ls":
		dls, err := f.list(ctx, c.JS, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			rows := []dlqRow{}
			for _, d := range dls {
				rows = append(rows, rowOf(d))
			}
			return writeIndentedJSON(a.stdout, rows)
		}
		tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DLQ SEQ\tCONSUMER\tCLASS\tDELIVERIES\tSUBJECT\tLOG SEQ\tAGE\tREASON")
		now := time.Now()
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", d.DLQSeq, d.Consumer, d.Class, d.Deliveries, d.Subject, d.StreamSeq, dlqAge(d.Time, now), d.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%d dead letter(s)\n", len(dls))
		return err
	case "show":
		d, err := getDeadLetter(ctx, c.JS, seqs[0])
		if err != nil {
			return err
		}
		if *asJSON {
			v, err := showOf(d)
			if err != nil {
				return err
			}
			return writeIndentedJSON(a.stdout, v)
		}
		return writeDeadLetter(a.stdout, d)
	case "replay":
		if *all {
			dls, err := f.list(ctx, c.JS, *limit)
			if err != nil {
				return err
			}
			for _, d := range dls {
				seqs = append(seqs, d.DLQSeq)
			}
		}
		if len(seqs) == 0 {
			return fmt.Errorf("%w: name DLQ sequences or use --all", errUsage)
		}
		for _, s := range seqs {
			dl, err := worker.Replay(ctx, c.JS, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "replayed DLQ %d to %s (%s, log seq %d)\n", s, dl.Consumer, dl.Subject, dl.StreamSeq)
		}
		return nil
	default: // drop
		var victims []worker.DeadLetter
		if len(seqs) > 0 {
			// Every named entry must exist before any is deleted.
			for _, s := range seqs {
				d, err := getDeadLetter(ctx, c.JS, s)
				if err != nil {
					return err
				}
				victims = append(victims, d)
			}
		} else if victims, err = f.list(ctx, c.JS, *limit); err != nil {
			return err
		}
		if !*yes {
			for _, d := range victims {
				fmt.Fprintf(a.stdout, "would drop DLQ %d (%s, %s, %s)\n", d.DLQSeq, d.Consumer, d.Class, d.Subject)
			}
			return fmt.Errorf("%w: nothing dropped: %d dead letter(s) selected; add --yes to delete them", errUsage, len(victims))
		}
		s, err := c.JS.Stream(ctx, topology.DLQStream)
		if err != nil {
			return fmt.Errorf("dlq stream: %w", err)
		}
		for _, d := range victims {
			if err := s.DeleteMsg(ctx, d.DLQSeq); err != nil {
				return fmt.Errorf("drop DLQ %d: %w", d.DLQSeq, err)
			}
			fmt.Fprintf(a.stdout, "dropped DLQ %d (%s, %s, %s)\n", d.DLQSeq, d.Consumer, d.Class, d.Subject)
		}
		_, err = fmt.Fprintf(a.stdout, "%d dead letter(s) dropped\n", len(victims))
		return err
	}
}

func parseSeqs(args []string) ([]uint64, error) {
	var seqs []uint64
	for _, s := range args {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%w: %q is not a DLQ sequence", errUsage, s)
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

// getDeadLetter reads one DLQ entry; a missing one is named.
func getDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (worker.DeadLetter, error) {
	s, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return worker.DeadLetter{}, fmt.Errorf("dlq stream: %w (run `tgflow nats apply`)", err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return worker.DeadLetter{}, fmt.Errorf("no dead letter %d in the DLQ: %w", seq, err)
	}
	if err != nil {
		return worker.DeadLetter{}, fmt.Errorf("dlq entry %d: %w", seq, err)
	}
	return worker.ParseDeadLetter(raw), nil
}

type dlqRow struct {
	Seq        uint64 `json:"dlq_seq"`
	Consumer   string `json:"consumer"`
	Class      string `json:"class"`
	Reason     string `json:"reason"`
	Deliveries uint64 `json:"deliveries"`
	Subject    string `json:"subject"`
	StreamSeq  uint64 `json:"stream_seq"`
	Time       string `json:"time"`
	Type       string `json:"ce_type,omitempty"`
	ID         string `json:"ce_id,omitempty"`
}

func rowOf(d worker.DeadLetter) dlqRow {
	return dlqRow{d.DLQSeq, d.Consumer, string(d.Class), d.Reason, d.Deliveries, d.Subject, d.StreamSeq,
		d.Time.Format(time.RFC3339), d.Header.Get("ce-type"), d.Header.Get("ce-id")}
}

type dlqShow struct {
	dlqRow
	Headers map[string][]string `json:"headers"`
	// Body is the original message's body: JSON as is, anything else as a string.
	Body json.RawMessage `json:"body"`
}

func showOf(d worker.DeadLetter) (dlqShow, error) {
	body := json.RawMessage(d.Data)
	if !json.Valid(d.Data) {
		q, err := json.Marshal(string(d.Data))
		if err != nil {
			return dlqShow{}, fmt.Errorf("dlq entry %d: body: %w", d.DLQSeq, err)
		}
		body = q
	}
	return dlqShow{dlqRow: rowOf(d), Headers: d.Header, Body: body}, nil
}

// writeDeadLetter prints a whole dead letter: why it died, every header, the body (JSON
// indented; anything else as it is).
func writeDeadLetter(w io.Writer, d worker.DeadLetter) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dlq seq\t%d\n", d.DLQSeq)
	fmt.Fprintf(tw, "consumer\t%s\n", d.Consumer)
	fmt.Fprintf(tw, "class\t%s\n", d.Class)
	fmt.Fprintf(tw, "reason\t%s\n", d.Reason)
	fmt.Fprintf(tw, "deliveries\t%d\n", d.Deliveries)
	fmt.Fprintf(tw, "subject\t%s (log seq %d)\n", d.Subject, d.StreamSeq)
	fmt.Fprintf(tw, "dead since\t%s\n", d.Time.Format(time.RFC3339))
	fmt.Fprintln(tw, "\nheaders:")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range d.Header[k] {
			fmt.Fprintf(tw, "  %s\t%s\n", k, v)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nbody (%d bytes):\n", len(d.Data))
	var pretty bytes.Buffer
	if json.Indent(&pretty, d.Data, "", "  ") == nil {
		pretty.WriteByte('\n')
		_, err := pretty.WriteTo(w)
		return err
	}
	_, err := fmt.Fprintf(w, "%s\n", d.Data)
	return err
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dlqAge(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}
