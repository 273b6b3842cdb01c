package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/config"
)

type ops struct {
	Addr string `env:"ADDR" envDefault:":9000"`
}

type sample struct {
	GRPCAddr string        `env:"GRPC_ADDR" envDefault:":7001"`
	Drain    time.Duration `env:"DRAIN_TIMEOUT" envDefault:"15s"`
	Workers  int           `env:"WORKERS" envDefault:"4"`
	Token    config.Secret `env:"TOKEN"`
	Ops      ops           `envPrefix:"OPS_"`
}

func (s *sample) Validate() error {
	if s.Workers < 1 {
		return fmt.Errorf("WORKERS must be at least 1, got %d", s.Workers)
	}
	return nil
}

func TestParseFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string
		check   func(t *testing.T, s sample)
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			check: func(t *testing.T, s sample) {
				if s.GRPCAddr != ":7001" || s.Drain != 15*time.Second || s.Ops.Addr != ":9000" {
					t.Fatalf("defaults not applied: %+v", s)
				}
			},
		},
		{
			name: "values",
			env:  map[string]string{"GRPC_ADDR": ":1", "DRAIN_TIMEOUT": "2s", "OPS_ADDR": ":2", "TOKEN": "s3cr3t"},
			check: func(t *testing.T, s sample) {
				if s.GRPCAddr != ":1" || s.Drain != 2*time.Second || s.Ops.Addr != ":2" || s.Token.Reveal() != "s3cr3t" {
					t.Fatalf("values not read: %+v", s)
				}
			},
		},
		{name: "bad duration names the variable", env: map[string]string{"DRAIN_TIMEOUT": "soon"}, wantErr: []string{"DRAIN_TIMEOUT", "soon"}},
		{name: "bad int names the variable", env: map[string]string{"WORKERS": "many"}, wantErr: []string{"WORKERS"}},
		{name: "validation names the variable", env: map[string]string{"WORKERS": "0"}, wantErr: []string{"WORKERS must be at least 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := config.ParseFrom[sample](tt.env)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("expected an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := config.Secret("hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s), fmt.Sprintf("%+v", struct{ S config.Secret }{s})} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %q", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal must return the value")
	}
}

func TestLookup(t *testing.T) {
	// t.Setenv: not parallel.
	for _, tc := range []struct {
		name, set, want string
		ok              bool
	}{
		{name: "GRPC_ADDR", want: ":7001", ok: true},
		{name: "OPS_ADDR", want: ":9000", ok: true},
		{name: "OPS_ADDR", set: "127.0.0.1:9100", want: "127.0.0.1:9100", ok: true},
		{name: "TOKEN", want: "", ok: true},
		{name: "ADDR", want: "", ok: false},
		{name: "UNKNOWN", set: "x", want: "", ok: false},
	} {
		if tc.set != "" {
			t.Setenv(tc.name, tc.set)
		}
		got, ok := config.Lookup[sample](tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%s) with %q set = %q, %v; want %q, %v", tc.name, tc.set, got, ok, tc.want, tc.ok)
		}
	}
}
