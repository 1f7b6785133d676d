package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
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

// retestOptions builds the probe options for targets from those flags.
func retestOptions(c *cli.Context, e *env, targets []string) (audit.Options, error) {
	return auditOptions(c, e, targets)
}

// probeCost says what a probe run cost the servers: endpoints, wall
// time, connections and round trips (each wait for a server reply, the
// greeting included), as the evidence records them per endpoint.
func probeCost(r *audit.Result) string {
	var eps, conns, rts int
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			eps++
			conns += ep.Connections
			rts += ep.RoundTrips
		}
	}
	if eps == 0 {
		return "no endpoint probed"
	}
	return fmt.Sprintf("%s in %s: %s, %s (%.1f per endpoint)", costCount(eps, "endpoint"),
		r.End.Sub(r.Start).Round(10*time.Millisecond), costCount(conns, "connection"), costCount(rts, "round trip"), float64(rts)/float64(eps))
}

// costCount is "1 thing" or "n things".
func costCount(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// verdictExit maps an audit's overall verdict to the exit code: open 3,
// inconclusive 5 (nothing found open, but something could not be
// tested), closed or no-mail 0.
func verdictExit(r *audit.Result) error {
	switch {
	case r == nil:
		return nil
	case r.Verdict == audit.VerdictOpen:
		return withCode(exitOpen, nil)
	case r.Verdict == audit.VerdictInconclusive:
		return withCode(exitInconclusive, fmt.Errorf("inconclusive: nothing found open, but not everything could be tested%s", inconclusiveWhy(r)))
	}
	return nil
}

// inconclusiveWhy names the first inconclusive target and its reason.
func inconclusiveWhy(r *audit.Result) string {
	for _, t := range r.Targets {
		if t.Verdict == audit.VerdictInconclusive {
			if strings.HasPrefix(t.Reason, t.Target) { // the reason names it already
				return " (" + t.Reason + ")"
			}
			return fmt.Sprintf(" (%s: %s)", t.Target, t.Reason)
		}
	}
	return ""
}
