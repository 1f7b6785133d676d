package engagement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"time"

	"github.com/relaylock/relaylock/report/evidence"
)

// EvidenceOptions name the evidence file a job adds to and what it records
// about the engagement (--evidence, --client, --authorization, --ticket).
type EvidenceOptions struct {
	// Path is the evidence file; "" records nothing.
	Path          string
	Client        string
	Authorization string
	Ticket        string
}

// recorder adds sections to the evidence file; with no file it does
// nothing.
type recorder struct {
	ctx        context.Context // bounds the wait for the evidence lock (Ctrl-C)
	env        *Env            // where a lost write is noted (UpdateOrWarn)
	path       string
	tool       evidence.Tool
	engagement evidence.Engagement
	now        func() time.Time
}

// newRecorder returns the recorder of a job on the evidence o names, for
// the targets or hosts in scope.
func newRecorder(ctx context.Context, e *Env, o EvidenceOptions, scope []string) *recorder {
	return &recorder{
		ctx:  ctx,
		env:  e,
		path: o.Path,
		tool: evidence.CurrentTool(e.Version, e.Commit),
		engagement: evidence.Engagement{
			Client:        o.Client,
			Authorization: o.Authorization,
			Operator:      osUser(),
			Scope:         scope,
			Ticket:        o.Ticket,
		},
		now: func() time.Time { return time.Now().UTC() },
	}
}

// update applies fn to the evidence, keeping what is already there.
func (r *recorder) update(fn func(b *evidence.Bundle)) error {
	if r == nil || r.path == "" {
		return nil
	}
	if r.env != nil && r.env.BeforeEvidenceWrite != nil {
		r.env.BeforeEvidenceWrite(r.path)
	}
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	err := evidence.Update(ctx, r.path, func(b *evidence.Bundle) error {
		b.Tool = r.tool
		mergeEngagement(&b.Engagement, r.engagement)
		fn(b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("write evidence %s: %w", r.path, err)
	}
	return nil
}

// updateOrWarn adds to the evidence like update, for a result that has
// already happened (a change applied, a re-test run): a failed write does
// not stop the job, it is reported on stderr at once, and the job exits
// with ExitEvidence unless it has a stronger code to give
// (Env.EvidenceLost).
func (r *recorder) updateOrWarn(stderr io.Writer, what string, fn func(b *evidence.Bundle)) {
	err := r.update(fn)
	if err == nil {
		return
	}
	fmt.Fprintf(stderr, "relaylock: %s is NOT in the evidence file: %v\n", what, err)
	var mod *evidence.ModifiedError
	if errors.As(err, &mod) {
		WriteMismatches(stderr, mod.Result)
	}
	if r.env != nil && r.env.evidenceLost == nil {
		r.env.evidenceLost = err
	}
}

// log records one line of the account of what was done.
func (r *recorder) log(b *evidence.Bundle, step, host, msg string) {
	b.Log = append(b.Log, evidence.LogEntry{Time: r.now(), Step: step, Host: host, Message: msg})
}

func mergeEngagement(dst *evidence.Engagement, src evidence.Engagement) {
	if src.Client != "" {
		dst.Client = src.Client
	}
	if src.Authorization != "" {
		dst.Authorization = src.Authorization
	}
	if src.Operator != "" {
		dst.Operator = src.Operator
	}
	if src.Ticket != "" {
		dst.Ticket = src.Ticket
	}
	seen := map[string]bool{}
	for _, s := range dst.Scope {
		seen[s] = true
	}
	for _, s := range src.Scope {
		if !seen[s] {
			dst.Scope = append(dst.Scope, s)
			seen[s] = true
		}
	}
}

func osUser() string {
	u, err := user.Current()
	if err != nil {
		return "unknown"
	}
	return u.Username
}

// PreflightEvidence checks the evidence file at path before a job that
// adds to it does any work: evidence that does not verify, cannot be read
// strictly, or is locked by a live run is refused at once, before a probe
// is sent or a host is touched. An empty path is fine.
func PreflightEvidence(stderr io.Writer, path string) error {
	if path == "" {
		return nil
	}
	err := evidence.Preflight(path)
	var mod *evidence.ModifiedError
	switch {
	case errors.As(err, &mod):
		WriteMismatches(stderr, mod.Result)
		return WithCode(ExitError, fmt.Errorf("%w\nhint: relaylock adds only to evidence that verifies; name a new --evidence file, and keep this one for the record", err))
	case err != nil:
		return WithCode(ExitError, fmt.Errorf("evidence %s: %w", path, err))
	}
	return nil
}

// evidenceWriteError marks a result that was obtained but could not be
// added to the evidence file; the job prints the result anyway.
type evidenceWriteError struct{ err error }

func (e *evidenceWriteError) Error() string { return e.err.Error() }
func (e *evidenceWriteError) Unwrap() error { return e.err }

// evidenceWriteFailed reports, after the result has been printed, that
// it is not in the evidence, and gives the exit code: ExitOpen when an
// open relay was found (the finding matters most), else ExitEvidence.
func evidenceWriteFailed(stderr io.Writer, open bool, err error) error {
	fmt.Fprintf(stderr, "relaylock: the result above is NOT in the evidence file: %v\n", err)
	var mod *evidence.ModifiedError
	if errors.As(err, &mod) {
		WriteMismatches(stderr, mod.Result)
	}
	if open {
		return WithCode(ExitOpen, nil)
	}
	return WithCode(ExitEvidence, nil)
}

// WriteMismatches prints what relaylock verify prints for each problem.
func WriteMismatches(w io.Writer, r *evidence.CheckResult) {
	w = PrintableLines{w} // names and values from the evidence file
	for _, l := range r.Notes {
		fmt.Fprintf(w, "note      %s\n", l)
	}
	for _, l := range r.Problems {
		fmt.Fprintf(w, "MISMATCH  %s\n", l)
	}
}
