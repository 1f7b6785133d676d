package main

import (
	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

// evidenceFlags are shared by every command that adds to the evidence file.
func evidenceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "evidence", Usage: "add results to the evidence `FILE` (JSON; created if missing, written atomically, mode 0600)"},
		&cli.StringFlag{Name: "client", Usage: "client `NAME` recorded in the evidence and report"},
		&cli.StringFlag{Name: "authorization", Usage: "reference `REF` of the written authorization for this test, recorded in the evidence"},
		&cli.StringFlag{Name: "ticket", Usage: "change ticket `ID`, recorded in the evidence and with every change this command makes"},
	}
}

// evidenceOptions maps the evidence flags.
func evidenceOptions(c *cli.Context) engagement.EvidenceOptions {
	return engagement.EvidenceOptions{Path: c.String("evidence"), Client: c.String("client"),
		Authorization: c.String("authorization"), Ticket: c.String("ticket")}
}
