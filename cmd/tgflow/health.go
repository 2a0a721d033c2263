package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func init() {
	register(command{"health", "URL [--timeout 3s]",
		"GET URL; exit 0 on a 2xx answer, 1 otherwise (container healthchecks: the image has no shell or wget)", runHealth, nil})
}

// errUnhealthy is returned when the URL does not answer 2xx.
var errUnhealthy = errors.New("unhealthy")

// runHealth fails with exit status 1 on every problem, a bad argument included: Docker
// reserves status 2 of a healthcheck.
func runHealth(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("tgflow health", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "longest wait for the answer")
	// The URL comes first (tgflow health URL --timeout 2s) or after the flags.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %w", errUnhealthy, err)
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: health takes one URL", errUnhealthy)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http(s) URL like http://127.0.0.1:9464/healthz", errUnhealthy, target)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnhealthy, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errUnhealthy, u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return fmt.Errorf("%w: %s: read the answer: %w", errUnhealthy, u.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: %s answered %s: %s", errUnhealthy, u.Redacted(), resp.Status, body)
	}
	fmt.Fprintf(a.stdout, "%s %s\n", resp.Status, body)
	return nil
}
