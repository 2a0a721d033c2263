package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services/embed/use"
)

// runModels is `tgflow models pull|ls`: the local models (today USE multilingual v3) under
// TGFLOW_MODELS_DIR (default <TGFLOW_DATA_DIR>/models). The logic is in services/embed/use.
func runModels(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || (args[0] != "pull" && args[0] != "ls") {
		return fmt.Errorf("%w: tgflow models pull | ls", errUsage)
	}
	fs := newFlags("models "+args[0], a)
	dirFlag := fs.String("dir", "", "models directory (overrides TGFLOW_MODELS_DIR)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	b, _, err := a.base()
	if err != nil {
		return err
	}
	var mc use.Config
	if err := config.Load(&mc, a.env); err != nil {
		return err
	}
	dir := mc.Resolve(b.DataDir)
	if *dirFlag != "" {
		dir = *dirFlag
	}
	var st use.Status
	if args[0] == "pull" {
		st, err = use.Pull(ctx, dir, use.PullOptions{Log: a.stderr})
	} else {
		st, err = use.Check(dir)
	}
	if st.Dir != "" {
		printModels(a, st)
	}
	return err
}

func printModels(a *app, st use.Status) {
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MODEL\tFILE\tSIZE\tSHA256\tSTATUS\n")
	for _, f := range st.Files {
		status, size, sum := "missing", "-", "-"
		if f.Present {
			size, sum = fmt.Sprint(f.Size), f.Actual
			status = "ok"
			if !f.OK {
				status = "corrupted (want " + f.SHA256 + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", use.Model+" "+use.PackageVersion, f.Path, size, sum, status)
	}
	tw.Flush()
}
