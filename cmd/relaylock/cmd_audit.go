package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// TODO(owner): replace with the real command. This placeholder exists only
// so that the tree builds while the command is written; it must not ship.
func auditCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "audit",
		Usage:  "(being written)",
		Action: func(*cli.Context) error { return errors.New("audit: not implemented yet") },
	}
}
