// Package comfortctl is the command-line client of the Comfortech platform
// for operators and scripts: it logs in, reports the health of every part,
// applies and diffs the environment configuration, lists, inspects and
// provisions devices, injects test notifications and runs the device
// simulator, through the gateways' REST APIs (and Kafka and MQTT for the
// last two). Run is the whole program; command comfortctl only calls it,
// so tests drive it in-process.
//
// Exit codes, which scripts may rely on:
//
//	0  success
//	1  failure: the platform refused the request (the envelope's code,
//	   message and fields are printed), could not be reached, a part is
//	   not ready (status), no one is logged in, or a file could not be
//	   read or written
//	2  usage: unknown command or flag, missing or extra argument, invalid
//	   flag value; nothing was sent
//	3  diff only: the environment differs from the file
package comfortctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfortech/platform/libs/apiclient"
)

// Exit codes of Run.
const (
	// ExitOK is success.
	ExitOK = 0
	// ExitFailure is a failed operation.
	ExitFailure = 1
	// ExitUsage is a command line that cannot be run.
	ExitUsage = 2
	// ExitChanges is diff's answer when the environment differs.
	ExitChanges = 3
)

// Run runs comfortctl with args (without the program name), reading and
// writing the given streams, and returns its exit code. Environment
// variables (COMFORTCTL_*) are read from the process environment.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exitCode(cmd, err)
}

// usageError is a command line that cannot be run: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError ends a command with a chosen exit code, and a message when err
// is not nil.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// exitCode prints err and maps it to an exit code. Errors cobra returns
// before a command starts (flags, arguments, unknown commands) are usage
// errors; errors of a started command are failures unless typed.
func (a *app) exitCode(cmd *cobra.Command, err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ue usageError
	var ee exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err == nil {
			return code
		}
	case errors.As(err, &ue), !a.started:
		code = ExitUsage
	}
	fmt.Fprintf(a.stderr, "comfortctl: %v\n", err)
	if apiErr, ok := errors.AsType[*apiclient.APIError](err); ok {
		for _, d := range apiErr.Details {
			// The message often says the first one already.
			if !strings.Contains(apiErr.Message, d.Field+": "+d.Description) {
				fmt.Fprintf(a.stderr, "  field %s: %s\n", d.Field, d.Description)
			}
		}
		if apiErr.RequestID != "" {
			fmt.Fprintf(a.stderr, "  request id: %s\n", apiErr.RequestID)
		}
	}
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// Defaults: the development ports of `make run` on this machine.
const (
	defaultAuthURL  = "http://localhost:8081"
	defaultAdminURL = "http://localhost:8082"
	defaultIssuer   = "http://localhost:8090/realms/comfortech"
	defaultBrokers  = "127.0.0.1:19092"
	defaultMQTT     = "tcp://localhost:11883"
	defaultTimeout  = 2 * time.Minute
)

// app is one run: its streams, global flags and session.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Global flags.
	configPath        string
	output            string
	authURL, adminURL string
	issuer            string
	ops               map[string]string
	forceProgress     bool
	timeout           time.Duration

	// started is set once cobra has accepted the command line and the
	// command's action runs (see markStart).
	started bool
	http    *http.Client
	// sess is the loaded session (nil until loadSession).
	sess *sessionState
}

// rootCommand builds the command tree.
func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "comfortctl",
		Short: "Operate a Comfortech platform: login, status, environment configuration, devices, notifications, simulator",
		Long: `comfortctl talks to the platform's gateways (auth :8081, admin :8082) and ops
listeners, as an administrator logged in with a password or as the ops
service-account client.

Exit codes: 0 success; 1 failure (an API error is printed with its code,
message and fields); 2 usage error (nothing was sent); 3 diff found changes.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              groupArgs,
		RunE:              groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error { return a.setup() },
	}
	f := root.PersistentFlags()
	f.StringVar(&a.configPath, "config", "", "session file (env COMFORTCTL_CONFIG; default <user config dir>/comfortctl/session.json)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	f.StringVar(&a.authURL, "auth-url", "", "auth gateway URL (env COMFORTCTL_AUTH_URL; default the session's, else "+defaultAuthURL+")")
	f.StringVar(&a.adminURL, "admin-url", "", "admin gateway URL (env COMFORTCTL_ADMIN_URL; default the session's, else "+defaultAdminURL+")")
	f.StringVar(&a.issuer, "issuer", "", "realm URL for client-credentials logins (env COMFORTCTL_ISSUER; default the session's, else "+defaultIssuer+")")
	f.StringToStringVar(&a.ops, "ops", nil, "ops listeners for status, part=host:port,... (env COMFORTCTL_OPS; default the session's, else make run's ports)")
	f.BoolVar(&a.forceProgress, "progress", false, "show progress bars on stderr even when it is not a terminal")
	f.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of each HTTP request")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(a.loginCommand(), a.logoutCommand(), a.statusCommand(),
		a.applyCommand(false), a.applyCommand(true), a.devicesCommand(), a.notifyCommand(), a.simulateCommand())
	a.markStart(root)
	return root
}

// markStart wraps every command's action so that it records that cobra
// accepted the command line: cobra checks required flags after the
// persistent pre-run, so only the action itself marks the start.
func (a *app) markStart(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			a.started = true
			return run(cmd, args)
		}
	}
	for _, c := range cmd.Commands() {
		a.markStart(c)
	}
}

// setup checks the global flags once the command line is accepted.
func (a *app) setup() error {
	switch a.output {
	case "table", "json":
	default:
		return usagef("--output %q: want table or json", a.output)
	}
	if a.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	a.http = &http.Client{Timeout: a.timeout}
	return nil
}

// groupArgs accepts anything, so that groupRun reports an unknown command
// as a usage error rather than cobra printing help and succeeding.
func groupArgs(*cobra.Command, []string) error { return nil }

// groupRun is the action of a command that only groups others.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usagef("missing command: one of %s", strings.Join(subcommands(cmd), ", "))
	}
	return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
}

func subcommands(cmd *cobra.Command) []string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return names
}

// exactArgs is cobra.ExactArgs naming what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

// setting resolves a global setting: the flag, else the environment
// variable, else the session's value, else the default.
func (a *app) setting(flag, env, fromSession, def string) string {
	if flag != "" {
		return strings.TrimRight(flag, "/")
	}
	if v := a.getenv(env); v != "" {
		return strings.TrimRight(v, "/")
	}
	if fromSession != "" {
		return fromSession
	}
	return def
}
