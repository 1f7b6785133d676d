package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/report/evidence"
)

// addEvidencePreflight makes every command that adds to an evidence file
// (every command with --evidence but report, which verifies for itself)
// check the file before it does any work: evidence that does not verify,
// cannot be read strictly, or is locked by a live run is refused at once,
// before a probe is sent or a host is touched.
//
// It also makes such a command exit with exitEvidence when it otherwise
// succeeded but a part of its result could not be added to the evidence
// (updateOrWarn).
func addEvidencePreflight(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.Name == "report" || cmd.Action == nil {
			continue
		}
		for _, f := range cmd.Flags {
			if names := f.Names(); len(names) > 0 && names[0] == "evidence" {
				before := cmd.Before // another hook runs first
				cmd.Before = func(c *cli.Context) error {
					if before != nil {
						if err := before(c); err != nil {
							return err
						}
					}
					return evidencePreflight(c)
				}
				action := cmd.Action
				cmd.Action = func(c *cli.Context) error {
					err := action(c)
					if lost, _ := c.App.Metadata[evidenceLostKey].(error); err == nil && lost != nil {
						return withCode(exitEvidence, nil)
					}
					return err
				}
			}
		}
	}
}

// evidenceLostKey is the App.Metadata entry that holds the first
// evidence write that failed after the command's work had begun.
const evidenceLostKey = "relaylock.evidence-lost"

// updateOrWarn adds to the evidence like update, for a result that has
// already happened (a change applied, a re-test run): a failed write does
// not stop the command, it is reported on stderr at once, and the command
// exits with exitEvidence unless it has a stronger code to give.
func (r *recorder) updateOrWarn(stderr io.Writer, what string, fn func(b *evidence.Bundle)) {
	err := r.update(fn)
	if err == nil {
		return
	}
	fmt.Fprintf(stderr, "relaylock: %s is NOT in the evidence file: %v\n", what, err)
	var mod *evidence.ModifiedError
	if errors.As(err, &mod) {
		writeMismatches(stderr, mod.Result)
	}
	if r.app != nil {
		if r.app.Metadata == nil {
			r.app.Metadata = map[string]any{}
		}
		if _, ok := r.app.Metadata[evidenceLostKey]; !ok {
			r.app.Metadata[evidenceLostKey] = err
		}
	}
}

func evidencePreflight(c *cli.Context) error {
	path := c.String("evidence")
	if path == "" {
		return nil
	}
	err := evidence.Preflight(path)
	var mod *evidence.ModifiedError
	switch {
	case errors.As(err, &mod):
		writeMismatches(c.App.ErrWriter, mod.Result)
		return withCode(exitError, fmt.Errorf("%w\nhint: relaylock adds only to evidence that verifies; name a new --evidence file, and keep this one for the record", err))
	case err != nil:
		return withCode(exitError, fmt.Errorf("evidence %s: %w", path, err))
	}
	return nil
}

// evidenceWriteError marks a result that was obtained but could not be
// added to the evidence file; the command prints the result anyway.
type evidenceWriteError struct{ err error }

func (e *evidenceWriteError) Error() string { return e.err.Error() }
func (e *evidenceWriteError) Unwrap() error { return e.err }

// evidenceWriteFailed reports, after the result has been printed, that
// it is not in the evidence, and gives the exit code: exitOpen when an
// open relay was found (the finding matters most), else exitEvidence.
func evidenceWriteFailed(stderr io.Writer, open bool, err error) error {
	fmt.Fprintf(stderr, "relaylock: the result above is NOT in the evidence file: %v\n", err)
	var mod *evidence.ModifiedError
	if errors.As(err, &mod) {
		writeMismatches(stderr, mod.Result)
	}
	if open {
		return withCode(exitOpen, nil)
	}
	return withCode(exitEvidence, nil)
}

// beforeEvidenceWrite, when set by tests, runs just before a command
// writes its result to the evidence file (to break the file or take its
// lock in the middle of a run).
var beforeEvidenceWrite func(path string)
