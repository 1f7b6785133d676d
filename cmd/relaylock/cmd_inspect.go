package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// TODO(owner): replace with the real command. This placeholder exists only
// so that the tree builds while the command is written; it must not ship.
func inspectCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "inspect",
		Usage:  "(being written)",
		Action: func(*cli.Context) error { return errors.New("inspect: not implemented yet") },
	}
}
