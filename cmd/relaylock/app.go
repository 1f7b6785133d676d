package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/relaylock/relaylock/internal/buildinfo"
	"github.com/relaylock/relaylock/internal/cliargs"
	"github.com/relaylock/relaylock/internal/clicomplete"
	"github.com/relaylock/relaylock/internal/engagement"
)

// env is everything a command may touch outside its arguments, so that
// tests can run the whole CLI in-process.
type env = engagement.Env

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

type usageError = engagement.UsageError

func usagef(format string, a ...any) error { return engagement.Usagef(format, a...) }

func withCode(code int, err error) error { return engagement.WithCode(code, err) }

// testHooks, when set (by TestMain), fills in the test seams of each
// run's Env.
var testHooks func(e *env)

// Version and commit; set with -ldflags "-X main.version=... -X main.commit=..."
// or read from the build's VCS stamp (buildinfo.Version).
var (
	version = "dev"
	commit  = ""
)

// runners are the jobs the commands run. Tests replace one (gh's runF) to
// see the options a command line maps to, without running anything.
type runners struct {
	audit     func(context.Context, *env, engagement.AuditOptions) error
	report    func(context.Context, *env, engagement.ReportOptions) error
	verify    func(context.Context, *env, engagement.VerifyOptions) error
	keygen    func(context.Context, *env, engagement.KeygenOptions) error
	inspect   func(context.Context, *env, engagement.InspectOptions) error
	doctor    func(context.Context, *env, engagement.DoctorOptions) error
	remediate func(context.Context, *env, engagement.RemediateOptions) error
	rollback  func(context.Context, *env, engagement.RollbackOptions) error
	fix       func(context.Context, *env, engagement.FixOptions) error
	lab       func(context.Context, *env, engagement.LabOptions) error
	demo      func(context.Context, *env, engagement.DemoOptions) error
}

func defaultRunners() runners {
	return runners{
		audit:     engagement.Audit,
		report:    engagement.Report,
		verify:    engagement.Verify,
		keygen:    engagement.Keygen,
		inspect:   engagement.Inspect,
		doctor:    engagement.Doctor,
		remediate: engagement.Remediate,
		rollback:  engagement.Rollback,
		fix:       engagement.Fix,
		lab:       engagement.Lab,
		demo:      engagement.Demo,
	}
}

func newApp(e *env) *cli.App { return buildApp(e, defaultRunners()) }

func buildApp(e *env, r runners) *cli.App {
	useVersionFlag()
	ver, rev := buildinfo.Version(version, commit)
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
		Flags:                []cli.Flag{quietFlag()},
		// Without a known command: help, or a usage error for a
		// misspelt one (`relaylock audti x`).
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			return unknownCommand(c.App, c.Args().First())
		},
		Commands: []*cli.Command{
			auditCommand(e, r.audit),
			inspectCommand(e, r.inspect),
			doctorCommand(e, r.doctor),
			remediateCommand(e, r.remediate),
			rollbackCommand(e, r.rollback),
			fixCommand(e, r.fix),
			reportCommand(e, r.report),
			verifyCommand(e, r.verify),
			keygenCommand(e, r.keygen),
			labCommand(e, r.lab),
			demoCommand(e, r.demo),
			completionCommand(e),
		},
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{Msg: err.Error()} }
	app.Before = func(c *cli.Context) error {
		if c.Bool("quiet") {
			// No progress lines, and no progress bar either.
			e.Quiet, e.StderrIsTerminal = true, false
		}
		return checkFlagText(c)
	}
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
		if c.Name != "completion" {
			c.Flags = append(c.Flags, quietFlag())
			c.Before = app.Before
		}
	}
	// After the --quiet hook, which it chains: a command's Before runs
	// both.
	addEvidencePreflight(e, app.Commands)
	return app
}

// runApp runs the CLI on args without mapping errors to exit codes.
func runApp(ctx context.Context, e *env, args []string) error {
	return runAppWith(ctx, e, args, defaultRunners())
}

// runAppWith is runApp with the jobs r.
func runAppWith(ctx context.Context, e *env, args []string, r runners) error {
	run := *e // this run's own: --quiet and the lost evidence write
	e = &run
	if e.Version == "" {
		e.Version, e.Commit = buildinfo.Version(version, commit)
	}
	if testHooks != nil {
		testHooks(e)
	}
	app := buildApp(e, r)
	if words, ok := clicomplete.Request(args); ok {
		app.Setup()
		clicomplete.Write(e.Stdout, app, words, completionValues)
		return nil
	}
	if len(args) >= 3 && (args[1] == "help" || args[1] == "h") && !strings.HasPrefix(args[2], "-") && app.Command(args[2]) == nil {
		return unknownCommand(app, args[2])
	}
	return app.RunContext(ctx, cliargs.FlagsFirst(app, args))
}

// run runs the CLI and maps the outcome to an exit code.
func run(ctx context.Context, args []string, e *env) int {
	err := runApp(ctx, e, args)
	return exitCode(ctx, e.Stderr, err)
}

func exitCode(ctx context.Context, stderr io.Writer, err error) int {
	if err == nil {
		return engagement.ExitOK
	}
	// An error may quote a server (a reply, a fault, script output): no
	// control character of it reaches the terminal.
	stderr = engagement.PrintableLines{W: stderr}
	var ce engagement.CodeError
	if errors.As(err, &ce) {
		if ce.Err != nil && ce.Err.Error() != "" {
			fmt.Fprintf(stderr, "relaylock: %v\n", ce.Err)
		}
		return ce.Code
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "relaylock: %v\nhint: run 'relaylock help' for usage\n", ue.Msg)
		return engagement.ExitUsage
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		fmt.Fprintf(stderr, "relaylock: interrupted: %v\n", err)
		return engagement.ExitCancelled
	}
	fmt.Fprintf(stderr, "relaylock: %v\n", err)
	if h := hintFor(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return engagement.ExitError
}
