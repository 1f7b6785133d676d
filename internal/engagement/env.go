package engagement

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/relaylock/relaylock/audit"
)

// Exit codes, mapped in one place (README, "Exit codes").
const (
	ExitOK           = 0   // no open relay; remediated and re-test closed
	ExitError        = 1   // runtime error
	ExitUsage        = 2   // bad flags or arguments
	ExitOpen         = 3   // an open relay was found
	ExitStillOpen    = 4   // remediation applied but the re-test still shows a relay
	ExitInconclusive = 5   // nothing found open, but an endpoint could not be tested
	ExitEvidence     = 6   // the result was printed, but the evidence file could not be written (nothing open)
	ExitCancelled    = 130 // interrupted
)

// Env is everything a job may touch outside its options, so that tests
// can run every job, and the whole CLI, in-process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// StdinIsTerminal and StderrIsTerminal decide prompts and progress.
	StdinIsTerminal  bool
	StderrIsTerminal bool
	// Quiet (--quiet) drops progress lines; results, warnings and errors
	// are still printed.
	Quiet bool
	// Version and Commit name the build in the evidence.
	Version, Commit string

	// Test seams; nil in a real run.

	// WinRMDial, when set, opens the WinRM connections.
	WinRMDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver, when set, replaces DNS for the probes.
	Resolver audit.MailResolver
	// ReadPassword, when set, replaces the terminal's no-echo prompt.
	ReadPassword func() ([]byte, error)
	// BeforeEvidenceWrite, when set, runs just before a job writes its
	// result to the evidence file (to break the file or take its lock in
	// the middle of a run).
	BeforeEvidenceWrite func(path string)
	// CatchStarted, when set, is told the catcher's address.
	CatchStarted func(addr string)

	// evidenceLost is the first evidence write that failed after a job's
	// work had begun (recorder.updateOrWarn).
	evidenceLost error
}

// EvidenceLost returns the first evidence write that failed after the
// job's work had begun, or nil: the job then exits with ExitEvidence
// unless it has a stronger code to give.
func (e *Env) EvidenceLost() error { return e.evidenceLost }

// UsageError marks errors in how relaylock was called (exit code 2).
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef formats a UsageError.
func Usagef(format string, a ...any) error { return UsageError{fmt.Sprintf(format, a...)} }

// CodeError carries an exit code other than 1 with an optional message.
type CodeError struct {
	Code int
	Err  error
}

func (e CodeError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}
func (e CodeError) Unwrap() error { return e.Err }

// WithCode gives err the exit code code.
func WithCode(code int, err error) error { return CodeError{Code: code, Err: err} }

// PrintableLines writes each line through audit.Printable, keeping the
// line ends: for messages that may quote a server.
type PrintableLines struct{ W io.Writer }

func (p PrintableLines) Write(b []byte) (int, error) {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = audit.Printable(l)
	}
	if _, err := io.WriteString(p.W, strings.Join(lines, "\n")); err != nil {
		return 0, err
	}
	return len(b), nil
}

// progress prints a progress line unless --quiet.
func (e *Env) progress(format string, a ...any) {
	if e.Quiet {
		return
	}
	fmt.Fprintf(e.Stderr, "relaylock: %s\n", audit.Printable(fmt.Sprintf(format, a...)))
}
