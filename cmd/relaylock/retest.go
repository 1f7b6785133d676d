package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// retestFlags are the audit flags that shape the probe, for the commands
// that probe before and after a change (remediate, rollback, fix): the
// same test matrix as `relaylock audit`, without its output and catch
// flags.
func retestFlags() []cli.Flag {
	skip := map[string]bool{"format": true, "evidence": true, "client": true, "authorization": true,
		"ticket": true, "deliver": true, "contact": true}
	var out []cli.Flag
	for _, f := range auditFlags() {
		name := f.Names()[0]
		if skip[name] || strings.HasPrefix(name, "catch-") {
			continue
		}
		out = append(out, f)
	}
	return out
}
