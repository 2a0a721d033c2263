package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tgflow health exits 0 on a 2xx answer and 1 on anything else, a bad argument included
// (a healthcheck must never exit 2, which Docker reserves).
func TestHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/slow-start":
			http.Error(w, "starting", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tests := []struct {
		name string
		args []string
		ok   bool
		want string
	}{
		{name: "2xx", args: []string{srv.URL + "/healthz"}, ok: true, want: "200 OK ok"},
		{name: "flag before the URL", args: []string{"--timeout", "2s", srv.URL + "/healthz"}, ok: true},
		{name: "flag after the URL", args: []string{srv.URL + "/healthz", "--timeout", "2s"}, ok: true},
		{name: "503", args: []string{srv.URL + "/slow-start"}, want: "503"},
		{name: "404", args: []string{srv.URL + "/nothing"}, want: "404"},
		{name: "connection refused", args: []string{down.URL + "/healthz"}, want: "refused"},
		{name: "no URL", args: nil, want: "not an http(s) URL"},
		{name: "not http", args: []string{"nats://127.0.0.1:4222"}, want: "not an http(s) URL"},
		{name: "two URLs", args: []string{srv.URL, "--timeout", "1s", srv.URL}, want: "one URL"},
		{name: "bad flag", args: []string{srv.URL, "--nope"}, want: "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := tgflow(t, nil, append([]string{"health"}, tc.args...)...)
			if tc.ok {
				if err != nil || exitCode(err) != 0 {
					t.Fatalf("health: %v", err)
				}
				if !strings.Contains(out, tc.want) {
					t.Fatalf("printed %q, want %q", out, tc.want)
				}
				return
			}
			if !errors.Is(err, errUnhealthy) || exitCode(err) != 1 {
				t.Fatalf("err = %v (exit %d), want unhealthy with exit 1", err, exitCode(err))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
