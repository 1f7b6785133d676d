package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/report/evidence"
)

// exitEvidence: the result was printed on stdout, but the evidence file
// could not be written (README, "Exit codes"). An open relay still exits
// exitOpen, with the write error on stderr.
const exitEvidence = 6

// addEvidencePreflight makes every command that adds to an evidence file
// (every command with --evidence but report, which verifies for itself)
// check the file before it does any work: evidence that does not verify,
// cannot be read strictly, or is locked by a live run is refused at once,
// before a probe is sent or a host is touched.
func addEvidencePreflight(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.Name == "report" || cmd.Before != nil {
			continue
		}
		for _, f := range cmd.Flags {
			if names := f.Names(); len(names) > 0 && names[0] == "evidence" {
				cmd.Before = evidencePreflight
			}
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
