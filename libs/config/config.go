// Package config parses a binary's configuration from environment variables,
// once, into a typed struct, and reports a bad value with the name of the
// variable that holds it.
//
// Fields are declared with the tags of github.com/caarlos0/env/v11:
//
//	type Config struct {
//		GRPCAddr string        `env:"GRPC_ADDR" envDefault:":7001"`
//		Drain    time.Duration `env:"DRAIN_TIMEOUT" envDefault:"15s"`
//	}
//
// A struct that implements Validator is validated after parsing.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Validator is implemented by configuration structs with rules that tags
// cannot express (one of two fields required, a port range, ...). Validate
// names the offending variable in its error.
type Validator interface {
	Validate() error
}

// Parse reads the process environment into a new T.
func Parse[T any]() (T, error) {
	return ParseFrom[T](environ())
}

// ParseFrom reads the given environment into a new T. Tests use it to parse
// a configuration without touching the process environment.
func ParseFrom[T any](environment map[string]string) (T, error) {
	var cfg T
	opts := env.Options{Environment: environment}
	if err := env.ParseWithOptions(&cfg, opts); err != nil {
		return cfg, explain(&cfg, err)
	}
	if v, ok := any(&cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	return cfg, nil
}

// Lookup returns the value the environment variable name would give a
// field of T: the process environment's value when it is set, otherwise the
// field's envDefault. ok is false when no field of T reads name. It lets a
// binary read one setting (the healthcheck mode reads OPS_ADDR) without
// parsing, or validating, the rest of its configuration.
func Lookup[T any](name string) (value string, ok bool) {
	var cfg T
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return "", false
	}
	for _, f := range params {
		if f.Key != name {
			continue
		}
		if v, set := os.LookupEnv(name); set {
			return v, true
		}
		return f.DefaultValue, true
	}
	return "", false
}

func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// explain rewrites the library's errors, which name a parse failure by Go
// field name, so that every message names the environment variable instead.
func explain(cfg any, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	keys := fieldKeys(reflect.TypeOf(cfg).Elem(), "")
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := strings.Join(keys[pe.Name], " or ")
			if name == "" {
				name = pe.Name
			}
			msgs = append(msgs, fmt.Sprintf("%s: invalid value: %v", name, unwrapAll(pe.Err)))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return fmt.Errorf("config: %s: %w", strings.Join(msgs, "; "), err)
}

// fieldKeys maps Go field names to the environment variables that fill them,
// following nested structs and their envPrefix tags.
func fieldKeys(t reflect.Type, prefix string) map[string][]string {
	out := make(map[string][]string)
	for i := range t.NumField() {
		f := t.Field(i)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if p, ok := f.Tag.Lookup("envPrefix"); ok && ft.Kind() == reflect.Struct {
			for name, keys := range fieldKeys(ft, prefix+p) {
				out[name] = append(out[name], keys...)
			}
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if key != "" {
			out[f.Name] = append(out[f.Name], prefix+key)
		}
	}
	return out
}

func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// Secret is a string that never prints: fmt, zap and encoding/json all see
// "[redacted]". Use Reveal where the value is really needed.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer, so %#v does not leak the value either.
func (Secret) GoString() string { return `"[redacted]"` }

// MarshalText implements encoding.TextMarshaler for JSON and YAML output.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }
