package main

import (
	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

// evidenceFlags are shared by every command that adds to the evidence
// file, with the command's --ticket (changeTicketFlag or
// engagementTicketFlag).
func evidenceFlags(ticket cli.Flag) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "evidence", Usage: "add results to the evidence `FILE` (JSON; created if missing, written atomically, mode 0600)"},
		&cli.StringFlag{Name: "client", Usage: "client `NAME` recorded in the evidence and report"},
		&cli.StringFlag{Name: "authorization", Usage: "reference `REF` of the written authorization for this test, recorded in the evidence"},
		ticket,
	}
}

// changeTicketFlag is --ticket of the commands that may change a host.
func changeTicketFlag() cli.Flag {
	return &cli.StringFlag{Name: "ticket", Usage: "change ticket `ID`, recorded in the evidence and with every change this command makes"}
}

// engagementTicketFlag is audit's --ticket: audit changes nothing, so its
// ticket is the engagement's, not a change's.
func engagementTicketFlag() cli.Flag {
	return &cli.StringFlag{Name: "ticket", Usage: "ticket or work-order `ID` of this engagement, recorded in the evidence (remediate and fix record theirs with each change)"}
}

// evidenceOptions maps the evidence flags.
func evidenceOptions(c *cli.Context) engagement.EvidenceOptions {
	return engagement.EvidenceOptions{Path: c.String("evidence"), Client: c.String("client"),
		Authorization: c.String("authorization"), Ticket: c.String("ticket")}
}
