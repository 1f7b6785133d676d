package main

import (
	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

// addEvidencePreflight makes every command that adds to an evidence file
// (every command with --evidence but report, which verifies for itself)
// check the file before it does any work: evidence that does not verify,
// cannot be read strictly, or is locked by a live run is refused at once,
// before a probe is sent or a host is touched.
//
// It also makes such a command exit with ExitEvidence when it otherwise
// succeeded but a part of its result could not be added to the evidence
// (engagement.Env.EvidenceLost).
func addEvidencePreflight(e *env, cmds []*cli.Command) {
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
					return engagement.PreflightEvidence(c.App.ErrWriter, c.String("evidence"))
				}
				action := cmd.Action
				cmd.Action = func(c *cli.Context) error {
					err := action(c)
					if err == nil && e.EvidenceLost() != nil {
						return withCode(engagement.ExitEvidence, nil)
					}
					return err
				}
			}
		}
	}
}
