package main

import (
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/remediate"
)

// dcFlag is --dc, on inspect, remediate, rollback and fix: the domain
// controller an Exchange 2000/2003 run reads and writes Active Directory
// through.
func dcFlag() cli.Flag {
	return &cli.StringFlag{Name: "dc", Usage: "Exchange 2000/2003: read and write Active Directory through domain controller `HOST` " +
		"(default: the DSAccess configuration domain controller, which DS2MB copies into the metabase from)"}
}

var reDCFlag = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$`)

// hostOptions reads --dc.
func hostOptions(c *cli.Context) (remediate.HostOptions, error) {
	dc := c.String("dc")
	if dc != "" && !reDCFlag.MatchString(dc) {
		return remediate.HostOptions{}, usagef("--dc %q is not a host name (letters, digits, dots and hyphens)", dc)
	}
	return remediate.HostOptions{DC: dc}, nil
}
