package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// Exit codes, mapped in one place (README, "Exit codes").
const (
	exitOK        = 0 // no open relay; remediated and re-test closed
	exitError     = 1 // runtime error
	exitUsage     = 2 // bad flags or arguments
	exitOpen      = 3 // an open relay was found
	exitStillOpen = 4 // remediation applied but the re-test still shows a relay
	// exitInconclusive: nothing found open, but at least one target or
	// endpoint could not be tested (audit and every command that re-tests).
	exitInconclusive = 5
	exitCancelled    = 130 // interrupted
)

// env is everything a command may touch outside its arguments, so that
// tests can run the whole CLI in-process.
type env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// StdinIsTerminal and StderrIsTerminal decide prompts and progress.
	StdinIsTerminal  bool
	StderrIsTerminal bool
}

func newEnv() *env {
	return &env{
		Stdin:            os.Stdin,
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		StdinIsTerminal:  term.IsTerminal(int(os.Stdin.Fd())),
		StderrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// usageError marks errors in how relaylock was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit code other than 1 with an optional message.
type codeError struct {
	code int
	err  error
}

func (e codeError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e codeError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return codeError{code: code, err: err} }

// Version and commit; set with -ldflags "-X main.version=... -X main.commit=..."
// or read from the build's VCS stamp.
var (
	version = "dev"
	commit  = ""
)

func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		if rev == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
				if s.Key == "vcs.modified" && s.Value == "true" && rev != "" {
					rev += "-dirty"
				}
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

func newApp(e *env) *cli.App {
	ver, rev := buildVersion()
	app := &cli.App{
		Name:                 "relaylock",
		Usage:                "find open SMTP relays, close them on Windows mail servers, and prove it",
		Version:              ver + " (commit " + rev + ")",
		Reader:               e.Stdin,
		Writer:               e.Stdout,
		ErrWriter:            e.Stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      false,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() maps errors to codes
		Commands: []*cli.Command{
			auditCommand(e),
			inspectCommand(e),
			remediateCommand(e),
			rollbackCommand(e),
			fixCommand(e),
			reportCommand(e),
			verifyCommand(e),
			keygenCommand(e),
			labCommand(e),
			demoCommand(e),
			completionCommand(e),
		},
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
	}
	return app
}

// runApp runs the CLI on args without mapping errors to exit codes.
func runApp(ctx context.Context, e *env, args []string) error {
	app := newApp(e)
	return app.RunContext(ctx, interspersed(app, args))
}

// run runs the CLI and maps the outcome to an exit code.
func run(ctx context.Context, args []string, e *env) int {
	err := runApp(ctx, e, args)
	return exitCode(ctx, e.Stderr, err)
}

func exitCode(ctx context.Context, stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ce codeError
	if errors.As(err, &ce) {
		if ce.err != nil && ce.err.Error() != "" {
			fmt.Fprintf(stderr, "relaylock: %v\n", ce.err)
		}
		return ce.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "relaylock: %v\nhint: run 'relaylock help' for usage\n", ue.msg)
		return exitUsage
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		fmt.Fprintf(stderr, "relaylock: interrupted: %v\n", err)
		return exitCancelled
	}
	fmt.Fprintf(stderr, "relaylock: %v\n", err)
	if h := hintFor(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return exitError
}
