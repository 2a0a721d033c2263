package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tgflow/tgflow/events"
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
		ingest.PrintChannels(a.stdout, chans)
		return nil
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
