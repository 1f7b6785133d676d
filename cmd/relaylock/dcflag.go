package main

import (
	"github.com/urfave/cli/v2"
)

// dcFlag is --dc, on inspect, remediate, rollback and fix: the domain
// controller an Exchange 2000/2003 run reads and writes Active Directory
// through.
func dcFlag() cli.Flag {
	return &cli.StringFlag{Name: "dc", Usage: "Exchange 2000/2003: read and write Active Directory through domain controller `HOST` " +
		"(default: the DSAccess configuration domain controller, which DS2MB copies into the metabase from)"}
}
