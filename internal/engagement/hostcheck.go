package engagement

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// Evidence from another run: an evidence file names hosts by the address
// or name they were reached at, and two labs, or a server reinstalled or
// replaced behind the same address, look alike there. Before anything is
// recorded or changed, the host just inspected is compared with what the
// evidence recorded of the same address: the computer name and platform
// of its inspections, and the platform of its change records. A
// difference is another machine: the run stops (exit 1) and asks for a
// fresh --evidence file. There is no override: a fresh file costs
// nothing, while one file holding two machines under one address makes
// the report tie one machine's change to the other's relay.

// sameHost returns an error when the evidence at path recorded host as
// another machine than now, the fresh inspection of it.
func sameHost(path, host string, now *remediate.Inspection) error {
	if path == "" || now == nil {
		return nil
	}
	b, err := evidence.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	name, platform := now.HostInfo.ComputerName, now.Platform
	differs := func(otherName string, otherPlatform remediate.Platform) bool {
		if otherName != "" && name != "" && !strings.EqualFold(otherName, name) {
			return true
		}
		return otherPlatform != "" && platform != "" && otherPlatform != platform
	}
	refuse := func(what, otherName string, otherPlatform remediate.Platform) error {
		return WithCode(ExitError, fmt.Errorf("%s is %s, but %s in %s recorded %s as %s: that evidence is from another machine (or one reinstalled since); nothing was recorded or changed; use a fresh --evidence file for this host",
			host, describeHost(name, platform), what, path, host, describeHost(otherName, otherPlatform)))
	}
	for i := range b.Inspections {
		in := &b.Inspections[i]
		if sameName(in.Host, host) && differs(in.HostInfo.ComputerName, in.Platform) {
			return refuse(fmt.Sprintf("inspections[%d] (%s)", i, in.Time.UTC().Format("2006-01-02 15:04Z")), in.HostInfo.ComputerName, in.Platform)
		}
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		if sameName(c.Host, host) && differs("", c.Platform) {
			return refuse(fmt.Sprintf("changes[%d] (%s %s)", i, c.Kind, c.ID), "", c.Platform)
		}
	}
	return nil
}

func sameName(a, b string) bool { return normHost(a) == normHost(b) }

func describeHost(name string, p remediate.Platform) string {
	switch {
	case name != "" && p != "":
		return fmt.Sprintf("computer %s (%s)", name, p)
	case name != "":
		return "computer " + name
	}
	return string(p)
}

// untestedBefore handles a probe before the change that could test none
// of the endpoints (every one unreachable, or no endpoint at all): the
// re-test after the change will not show its effect either, and the
// endpoints may be another machine's (taken from an evidence file of
// another run). Given by --smtp-target, they are the operator's choice;
// otherwise --yes refuses (exit 1) before the backup and the change, and
// an operator who is asked is told in the confirmation. It returns the
// note for the confirmation.
func (f *fixer) untestedBefore(before *audit.Result, targets []string, o *remediate.Outcome) (string, error) {
	if before == nil || testedAny(before) || f.change.DryRun {
		if before != nil && !testedAny(before) {
			fmt.Fprintf(f.e.Stderr, "relaylock: warning: %s\n", untestedText(before, targets))
		}
		return "", nil
	}
	msg := untestedText(before, targets)
	if f.change.Yes && !f.explicitTargets {
		return "", WithCode(ExitError, fmt.Errorf("%s; with --yes relaylock does not change %s on that basis: nothing was changed; name the endpoints to re-test with --smtp-target HOST:PORT (or run without --yes to be asked)", msg, o.Plan.Host))
	}
	fmt.Fprintf(f.e.Stderr, "relaylock: warning: %s\n", msg)
	return msg, nil
}

// testedAny reports whether a probe decided at least one endpoint.
func testedAny(r *audit.Result) bool {
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			if ep.Verdict == audit.VerdictOpen || ep.Verdict == audit.VerdictClosed {
				return true
			}
		}
	}
	return false
}

func untestedText(before *audit.Result, targets []string) string {
	return fmt.Sprintf("the probe before the change could not test any of %s%s, so the re-test after it cannot show whether the change closed anything (are these the endpoints of this host, or of another run's evidence?)",
		strings.Join(targets, ", "), inconclusiveWhy(before))
}
