package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/tgflow/tgflow/nats/worker"
)

func runDLQ(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tgflow dlq ls | replay", errUsage)
	}
	fs := newFlags("dlq "+args[0], a)
	consumer := fs.String("consumer", "", "only this consumer's dead letters")
	asJSON := fs.Bool("json", false, "JSON output")
	all := fs.Bool("all", false, "replay every listed dead letter")
	limit := fs.Int("limit", 0, "at most this many entries (0: all)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
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
	switch args[0] {
	case "ls":
		dls, err := worker.ListDeadLetters(ctx, c.JS, *consumer, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			type row struct {
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
			rows := []row{}
			for _, d := range dls {
				rows = append(rows, row{d.DLQSeq, d.Consumer, string(d.Class), d.Reason, d.Deliveries, d.Subject, d.StreamSeq,
					d.Time.Format("2006-01-02T15:04:05Z07:00"), d.Header.Get("ce-type"), d.Header.Get("ce-id")})
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DLQ SEQ\tCONSUMER\tCLASS\tDELIVERIES\tSUBJECT\tLOG SEQ\tREASON")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\n", d.DLQSeq, d.Consumer, d.Class, d.Deliveries, d.Subject, d.StreamSeq, d.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%d dead letter(s)\n", len(dls))
		return err
	case "replay":
		var seqs []uint64
		if *all {
			dls, err := worker.ListDeadLetters(ctx, c.JS, *consumer, *limit)
			if err != nil {
				return err
			}
			for _, d := range dls {
				seqs = append(seqs, d.DLQSeq)
			}
		}
		for _, s := range fs.Args() {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: %q is not a DLQ sequence", errUsage, s)
			}
			seqs = append(seqs, n)
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
	}
	return fmt.Errorf("%w: unknown dlq subcommand %q", errUsage, args[0])
}
