package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/internal/config"
)

type svc struct {
	config.Base
	APIKey  config.Secret `env:"TGFLOW_TEST_API_KEY"`
	Workers int           `env:"TGFLOW_TEST_WORKERS" envDefault:"2"`
}

func TestLoadReportsEveryProblemWithItsVariable(t *testing.T) {
	var c svc
	err := config.Load(&c, map[string]string{
		"TGFLOW_TEST_WORKERS": "many",
		"TGFLOW_LOG_LEVEL":    "loud",
		"TGFLOW_LOG_FORMAT":   "xml",
		"TGFLOW_NATS_URL":     "::nope",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"TGFLOW_TEST_WORKERS", "TGFLOW_LOG_LEVEL", "TGFLOW_LOG_FORMAT", "TGFLOW_NATS_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestDefaultsAndSecretsMasked(t *testing.T) {
	var c svc
	if err := config.Load(&c, map[string]string{"TGFLOW_TEST_API_KEY": "sk-very-secret"}); err != nil {
		t.Fatal(err)
	}
	if c.Workers != 2 || c.DataDir != ".tgflow" || c.APIKey.Reveal() != "sk-very-secret" {
		t.Fatalf("loaded %+v", c)
	}
	var out bytes.Buffer
	config.Print(&out, &c)
	js, _ := json.Marshal(c)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", config.LogAttrs(&c)...)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "k", c.APIKey)
	for name, s := range map[string]string{"print": out.String(), "json": string(js), "log": logs.String()} {
		if strings.Contains(s, "very-secret") {
			t.Errorf("%s shows the secret: %s", name, s)
		}
	}
	if !strings.Contains(out.String(), "TGFLOW_TEST_API_KEY=****") {
		t.Errorf("print: %s", out.String())
	}
}

func TestVarsDocumentsEveryVariable(t *testing.T) {
	vars := config.Vars(&svc{})
	names := map[string]bool{}
	for _, v := range vars {
		names[v.Name] = true
	}
	for _, want := range []string{"TGFLOW_NATS_URL", "TGFLOW_DATA_DIR", "TGFLOW_TEST_API_KEY", "TGFLOW_TEST_WORKERS"} {
		if !names[want] {
			t.Errorf("Vars misses %s", want)
		}
	}
}

func TestNATSURLPasswordsNeverPrint(t *testing.T) {
	var c config.Base
	if err := config.Load(&c, map[string]string{"TGFLOW_NATS_URL": "nats://tagger:hunter2@nats:4222,nats://n2:4222"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	config.Print(&out, &c)
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "nats://tagger:xxxxx@nats:4222,nats://n2:4222") {
		t.Fatalf("print: %s", out.String())
	}
	var bad config.Base
	err := config.Load(&bad, map[string]string{"TGFLOW_NATS_URL": "::x:hunter2@"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the password or is missing: %v", err)
	}
}

// An unset variable gets its default; one set to the empty string is empty, so that
// "TGFLOW_HTTP_ADDR= disables" holds (caarlos0/env alone gives it the default).
func TestExplicitlyEmptyIsNotUnset(t *testing.T) {
	type nonEmpty struct {
		Name string `env:"TGFLOW_TEST_NAME,notEmpty" envDefault:"x"`
	}
	tests := []struct {
		name     string
		env      map[string]string
		wantAddr string
		wantErr  string // a substring of the error; "" for none
	}{
		{name: "unset gets the default", env: map[string]string{}, wantAddr: "127.0.0.1:9464"},
		{name: "empty disables", env: map[string]string{"TGFLOW_HTTP_ADDR": ""}, wantAddr: ""},
		{name: "a value is kept", env: map[string]string{"TGFLOW_HTTP_ADDR": ":9000"}, wantAddr: ":9000"},
		{name: "an empty number is an error", env: map[string]string{"TGFLOW_TEST_WORKERS": ""}, wantErr: "TGFLOW_TEST_WORKERS: set but empty"},
		{name: "an empty required string is an error", env: map[string]string{"TGFLOW_DATA_DIR": ""}, wantErr: "TGFLOW_DATA_DIR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c svc
			err := config.Load(&c, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTPAddr != tc.wantAddr {
				t.Fatalf("HTTPAddr = %q, want %q", c.HTTPAddr, tc.wantAddr)
			}
		})
	}
	var n nonEmpty
	if err := config.Load(&n, map[string]string{"TGFLOW_TEST_NAME": ""}); err == nil || !strings.Contains(err.Error(), "TGFLOW_TEST_NAME: must not be empty") {
		t.Fatalf("notEmpty: err = %v", err)
	}
}
