package main

import (
	"context"
	"fmt"

	"github.com/tgflow/tgflow/nats/topology"
)

func runNATS(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tgflow nats apply | files", errUsage)
	}
	switch args[0] {
	case "apply":
		fs := newFlags("nats apply", a)
		all := fs.Bool("all", false, "create every declared consumer, also of services this binary does not implement")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		b, log, err := a.base()
		if err != nil {
			return err
		}
		c, err := connect(ctx, b, "nats-apply", log)
		if err != nil {
			return err
		}
		defer c.Close()
		opts := topology.ApplyOptions{Consumers: registry().Consumers(), Replicas: b.StreamReplicas}
		if *all {
			opts.Consumers = nil
		}
		rep, err := topology.Apply(ctx, c.JS, opts)
		rep.Print(a.stdout)
		return err
	case "files":
		fs := newFlags("nats files", a)
		dir := fs.String("dir", "nats", "the repository's nats/ directory")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if err := topology.WriteFiles(*dir); err != nil {
			return err
		}
		files, err := topology.Files()
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "wrote %d files under %s\n", len(files), *dir)
		return nil
	}
	return fmt.Errorf("%w: unknown nats subcommand %q", errUsage, args[0])
}
