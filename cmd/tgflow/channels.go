package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services/ingest"
)

func runChannels(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tgflow channels add REF… | rm REF… | ls", errUsage)
	}
	sub := args[0]
	fs := newFlags("channels "+sub, a)
	messages := fs.Int("backfill-messages", 0, "add: read this many messages back (0: TGFLOW_BACKFILL_MESSAGES)")
	days := fs.Int("backfill-days", 0, "add: read this many days back (0: TGFLOW_BACKFILL_DAYS)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if (sub == "add" || sub == "rm") && fs.NArg() == 0 {
		return fmt.Errorf("%w: tgflow channels %s @name | t.me/name | id …", errUsage, sub)
	}
	// Refs are checked before connecting: a typo publishes nothing.
	for _, ref := range fs.Args() {
		if _, err := ingest.ParseChannelRef(ref); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	c, err := connect(ctx, b, "channels", log)
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "add":
		for _, ref := range fs.Args() {
			ev, err := ingest.AddChannel(ctx, c.JS, ref, events.Backfill{Messages: *messages, Days: *days})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "subscribed %s (%s)\n", ref, ev.Subject)
		}
		if why := ingestNotRunning(a.env); why != "" {
			fmt.Fprintf(a.stdout, "ingest reads the new subscription(s) once it runs; now: %s\n", why)
		}
		return nil
	case "rm":
		for _, ref := range fs.Args() {
			ev, err := ingest.RemoveChannel(ctx, c.JS, ref)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "unsubscribed %s (%s)\n", ref, ev.Subject)
		}
		return nil
	case "ls":
		chans, err := ingest.ListChannels(ctx, c.JS)
		if err != nil {
			return err
		}
		return printChannels(a.stdout, chans, ingestNotRunning(a.env))
	}
	return fmt.Errorf("%w: unknown channels subcommand %q", errUsage, sub)
}

func runLogin(ctx context.Context, a *app, args []string) error {
	fs := newFlags("login", a)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	method := "qr"
	if fs.NArg() > 0 {
		method = fs.Arg(0)
	}
	if method != "qr" && method != "phone" {
		return fmt.Errorf("%w: tgflow login [qr|phone]", errUsage)
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	c, err := connect(ctx, b, "login", log)
	if err != nil {
		return err
	}
	defer c.Close()
	return ingest.Login(ctx, c.JS, a.env, os.Stdin, a.stdout, method)
}

// ingestNotRunning says why ingest cannot run with this environment ("" when it can): its
// configuration is incomplete or invalid. It is a hint for `channels add/ls`; a `tgflow dev`
// or ingest container started with other variables may well be running.
func ingestNotRunning(env map[string]string) string {
	var cfg ingest.Config
	if err := config.Load(&cfg, env); err != nil {
		return fmt.Sprintf("ingest cannot start: %v", err)
	}
	if err := cfg.Configured(); err != nil {
		return fmt.Sprintf("ingest is %v, so it does not run", err)
	}
	return ""
}

// printChannels writes channels as a table. why, when set, says why subscriptions may be
// waiting for ingest.
func printChannels(w io.Writer, chans []ingest.ChannelInfo, why string) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tTITLE\tSTATE\tCURSOR\tLAST SYNC\tLAST ERROR")
	waiting := 0
	for _, c := range chans {
		user, id, sync := "-", "-", "-"
		if c.Username != "" {
			user = "@" + c.Username
		}
		if c.ChannelID.Valid() {
			id = c.ChannelID.String()
		}
		if !c.LastSync.IsZero() {
			sync = c.LastSync.Local().Format(time.DateTime)
		}
		state := "subscribed"
		switch {
		case c.Waiting && c.Subscribed:
			state, waiting = "waiting for ingest", waiting+1
		case c.Waiting:
			state, waiting = "removal waiting for ingest", waiting+1
		case !c.Subscribed:
			state = "removed"
		case !c.Resolved:
			state = "resolving"
		case c.Due && c.Cursor == 0:
			state = "backfill"
		case c.Due:
			state = "due"
		}
		errText := "-"
		if c.LastError != "" {
			errText = c.ErrorCode
			if !c.RetryAt.IsZero() {
				errText += " (retry " + c.RetryAt.Local().Format(time.DateTime) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", user, id, oneLine(c.Title), state, c.Cursor, sync, errText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if waiting > 0 {
		if why == "" {
			why = "it is not running, or has not caught up yet"
		}
		_, err := fmt.Fprintf(w, "%d change(s) waiting for ingest: %s\n", waiting, why)
		return err
	}
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
