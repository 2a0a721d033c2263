// Package config parses TGFLOW_* environment variables into typed config structs, once, at
// start. Every problem is reported at once with the variable's name; secrets are masked
// wherever a config is printed or logged.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Secret is a string that never prints: logs, errors and JSON see "****".
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "****"
}

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON masks the secret in JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Reveal returns the secret's value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// Validator is implemented by configs that check more than types.
type Validator interface{ Validate() error }

// Load parses the environment into cfg (a pointer to a struct with `env` tags) and
// validates it, returning every problem joined. An unset variable gets its `envDefault`; a
// variable set to the empty string is empty (a string field becomes "", so
// TGFLOW_HTTP_ADDR= disables the server; for any other type it is an error).
func Load(cfg any, environ map[string]string) error {
	opts := env.Options{Environment: environ}
	var errs []error
	empty := explicitlyEmpty(reflect.ValueOf(cfg).Elem(), environ)
	if err := env.ParseWithOptions(cfg, opts); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			fields := fieldVars(reflect.TypeOf(cfg).Elem())
			for _, e := range agg.Errors {
				var pe env.ParseError
				if errors.As(e, &pe) && fields[pe.Name] != "" {
					name := fields[pe.Name]
					e = fmt.Errorf("env: %s: %q is not a valid %s", name, environ[name], pe.Type)
				}
				errs = append(errs, e)
			}
		} else {
			errs = append(errs, err)
		}
	}
	for _, f := range empty {
		if err := f.clear(); err != nil {
			errs = append(errs, err)
		}
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(errs...))
}

// emptyField is a variable that is set, to the empty string, and has an envDefault.
type emptyField struct {
	name, def string
	notEmpty  bool
	v         reflect.Value
}

// clear applies the rule "a variable set to the empty string means empty; only an unset
// variable gets its default" (caarlos0/env gives an empty variable its default, so
// TGFLOW_HTTP_ADDR= would still serve): a string field becomes "", any other type — where
// empty means nothing — is an error naming the variable.
func (f emptyField) clear() error {
	if f.v.Kind() != reflect.String {
		return fmt.Errorf("env: %s: set but empty; unset it for the default %q", f.name, f.def)
	}
	if f.notEmpty {
		return fmt.Errorf("env: %s: must not be empty; unset it for the default %q", f.name, f.def)
	}
	f.v.SetString("")
	return nil
}

// explicitlyEmpty finds the fields of v (a struct, walked as fieldVars walks it) whose
// variable is set to "" in environ and that have an envDefault.
func explicitlyEmpty(v reflect.Value, environ map[string]string) []emptyField {
	var out []emptyField
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			out = append(out, explicitlyEmpty(v.Field(i), environ)...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		def, hasDef := f.Tag.Lookup("envDefault")
		if val, set := environ[name]; name == "" || !hasDef || !set || val != "" {
			continue
		}
		out = append(out, emptyField{name: name, def: def, v: v.Field(i),
			notEmpty: slices.Contains(strings.Split(opts, ","), "notEmpty")})
	}
	return out
}

// Environ returns the process environment as a map (for Load).
func Environ(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}

// fieldVars maps struct field names to their variable names.
func fieldVars(t reflect.Type) map[string]string {
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			for k, v := range fieldVars(f.Type) {
				out[k] = v
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		out[f.Name] = name
	}
	return out
}

// Var documents one environment variable of a config struct.
type Var struct {
	Name, Default, Help string
	Secret              bool
}

// Vars lists the variables of a config struct, from its `env`, `envDefault` and `help` tags.
func Vars(cfg any) []Var {
	var out []Var
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			if name == "" {
				continue
			}
			out = append(out, Var{Name: name, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help"),
				Secret: f.Type == reflect.TypeOf(Secret(""))})
		}
	}
	walk(reflect.TypeOf(cfg).Elem())
	return out
}

// Print writes the effective config, one variable a line, secrets masked.
func Print(w io.Writer, cfg any) {
	v := reflect.ValueOf(cfg).Elem()
	lines := map[string]string{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
				walk(v.Field(i))
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			if name == "" {
				continue
			}
			lines[name] = fmt.Sprint(v.Field(i).Interface())
		}
	}
	walk(v)
	names := make([]string, 0, len(lines))
	for n := range lines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s=%s\n", n, lines[n])
	}
}

// LogAttrs renders the effective config as slog attributes, secrets masked.
func LogAttrs(cfg any) []any {
	var b strings.Builder
	Print(&b, cfg)
	var attrs []any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		attrs = append(attrs, slog.String(k, v))
	}
	return attrs
}
