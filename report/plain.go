package report

import (
	"fmt"
	"strings"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// plainFindings is how many relay findings the plain summary tells one
// by one; the rest are counted.
const plainFindings = 3

// plainSummary is the executive summary in plain words, one paragraph:
// what was wrong, what was changed, and the proof. Every fact in it comes
// from the evidence; the sentences are the [summary.plain.*] texts, so
// that a translation can reword them.
func (r *renderer) plainSummary() string {
	m := r.m
	var s []string
	var relays, configs []*finding
	for _, f := range m.findings {
		if f.Kind == findingRelay {
			relays = append(relays, f)
		} else {
			configs = append(configs, f)
		}
	}
	if len(relays) == 0 {
		s = append(s, r.plainClean())
	}
	for i, f := range relays {
		if i == plainFindings {
			s = append(s, r.t.get("summary.plain.more", "n", fmt.Sprint(len(relays)-plainFindings)))
			break
		}
		s = append(s, r.plainFinding(f)...)
	}
	if len(configs) > 0 {
		s = append(s, r.t.get("summary.plain.config", "n", fmt.Sprint(len(configs))))
	}
	return strings.Join(s, " ")
}

// plainClean is the sentence for an engagement without an open relay.
func (r *renderer) plainClean() string {
	m := r.m
	if m.first < 0 {
		return r.t.get("summary.plain.untested")
	}
	res := m.b.Audits[m.first].Result
	var undecided []string
	for _, rw := range m.rows {
		if rw.Before != nil && rw.Before.EP.Verdict == audit.VerdictInconclusive {
			undecided = append(undecided, rw.Key.String())
		}
	}
	s := r.t.get("summary.plain.clean", "endpoints", fmt.Sprint(len(m.rows)), "vantage", vantageText(res.Vantage), "time", utc(res.Start))
	if len(undecided) > 0 {
		s += " " + r.t.get("summary.plain.undecided", "endpoints", strings.Join(undecided, ", "))
	}
	return s
}

// plainTests is how many triggering tests the plain-words paragraph names.
const plainTests = 3

// plainFinding tells one relay finding: what was wrong, the cause, the
// change and the proof.
func (r *renderer) plainFinding(f *finding) []string {
	b := r.m.b
	ep := f.Row.Before.EP
	var tests []string
	for _, tr := range ep.Tests {
		if contains(ep.Triggers, tr.ID) {
			tests = append(tests, tr.ID+" "+tr.Title)
		}
	}
	// Plain words name a few of the forms; the finding lists them all.
	if len(tests) > plainTests {
		tests = append(tests[:plainTests:plainTests], r.t.get("summary.plain.tests.more", "n", fmt.Sprint(len(tests)-plainTests)))
	}
	s := []string{r.t.get("summary.plain.wrong", "endpoint", f.Row.Key.String(), "tests", orDash(strings.Join(tests, "; ")))}

	// The cause: the inspection's findings that explain the relay seen.
	var causes []string
	for _, c := range f.Causes {
		if c.Explains {
			causes = append(causes, c.Title)
		}
	}
	if len(causes) > 0 {
		s = append(s, r.t.get("summary.plain.cause", "host", f.Host, "cause", strings.Join(causes, "; ")))
	} else {
		s = append(s, r.t.get("summary.plain.cause.unknown"))
	}

	// The change: the remediation in effect (the latest not undone by a
	// rollback), and in it the setting behind the cause if it was
	// changed, else the first decoded one. Changes undone by a rollback
	// are named as such, never as the change in effect.
	rec, undone := inEffect(f.Changes)
	if len(undone) > 0 {
		s = append(s, r.t.get("summary.plain.changed.rolled_back", "changes", strings.Join(undone, ", ")))
	}
	var main, allow *remediate.Change
	n := 0
	if rec != nil {
		for i := range rec.Applied {
			a := &rec.Applied[i]
			if strings.HasSuffix(a.Setting, ".raw") {
				continue // the decoded setting beside it tells the same
			}
			n++
			if main == nil || causeSetting(f.Causes, a) && !causeSetting(f.Causes, main) {
				main = a
			}
			if allow == nil && allowSetting(a.Setting) {
				allow = a
			}
		}
	}
	switch {
	case main != nil:
		more := ""
		if n > 1 {
			more = " " + r.t.get("summary.plain.changed.more", "n", fmt.Sprint(n-1))
		}
		ticket := ""
		if rec.Ticket != "" {
			ticket = r.t.get("summary.plain.changed.ticket", "ticket", rec.Ticket)
		}
		s = append(s, r.t.get("summary.plain.changed", "time", utc(rec.End), "user", orDash(rec.OSUser),
			"setting", main.Setting, "object", main.Object, "before", r.value(main.Object, main.Setting, main.Current),
			"after", r.value(main.Object, main.Setting, main.New), "more", more, "change", rec.ID, "ticket", ticket))
		if allow != nil && allow != main {
			s = append(s, r.t.get("summary.plain.changed.allow", "setting", allow.Setting, "object", allow.Object,
				"allow", r.value(allow.Object, allow.Setting, allow.New)))
		}
	case len(f.Changes) > 0:
		last := f.Changes[len(f.Changes)-1]
		s = append(s, r.t.get("summary.plain.changed.none_in_effect", "change", last.ID, "kind", string(last.Kind), "result", string(last.Result)))
	default:
		s = append(s, r.t.get("summary.plain.unchanged"))
	}

	// The proof: the latest re-test of the endpoint.
	a := f.Row.After
	if a == nil {
		return append(s, r.t.get("summary.plain.proof.none"))
	}
	run := b.Audits[a.Run]
	why := ""
	if a.EP.Reason != "" {
		why = " " + r.t.get("summary.plain.reason", "reason", strings.Join(strings.Fields(a.EP.Reason), " "))
	}
	kv := []string{"run", fmt.Sprint(a.Run + 1), "time", utc(a.EP.Start), "vantage", vantageText(run.Result.Vantage), "reason", why}
	switch a.EP.Verdict {
	case audit.VerdictClosed:
		s = append(s, r.t.get("summary.plain.proof.closed", kv...))
	case audit.VerdictOpen:
		s = append(s, r.proofOpen(a, kv))
	default:
		s = append(s, r.t.get("summary.plain.proof.inconclusive", kv...))
	}
	return s
}

// inEffect returns the remediation in effect after the changes, in
// order: the latest applied (or partly applied) remediation that no
// later finished rollback undid, or nil. undone are the IDs of the
// applied remediations a rollback undid before it, in order. It follows
// applied, which decides whether any remediation is in effect.
func inEffect(cs []*remediate.ChangeRecord) (rec *remediate.ChangeRecord, undone []string) {
	var cur *remediate.ChangeRecord
	for i, c := range cs {
		switch {
		case c.Kind == remediate.ChangeRemediate && (c.Result == remediate.ResultApplied || c.Result == remediate.ResultPartial):
			cur = c
		case c.Kind == remediate.ChangeRollback && cur != nil && !applied(cs[:i+1]):
			undone = append(undone, cur.ID)
			cur = nil
		}
	}
	if !applied(cs) {
		return nil, undone
	}
	return cur, undone
}

// allowSetting reports a setting that holds the clients allowed to
// relay: RelayIpList (IIS, Exchange 2000/2003) or a receive connector's
// RemoteIPRanges (Exchange 2007 and later).
func allowSetting(setting string) bool {
	return setting == remediate.SettingRelayIpList || setting == remediate.SetRemoteIPRanges
}

// causeSetting reports whether a change is to the setting a cause names.
func causeSetting(causes []remediate.Finding, a *remediate.Change) bool {
	for _, c := range causes {
		if c.Explains && c.Object == a.Object && c.Setting == a.Setting {
			return true
		}
	}
	return false
}

// vantageText is "host (address, address)".
func vantageText(v audit.Vantage) string {
	addrs := strings.Join(v.SourceAddrs, ", ")
	switch {
	case v.Hostname != "" && addrs != "":
		return v.Hostname + " (" + addrs + ")"
	case v.Hostname != "":
		return v.Hostname
	}
	return orDash(addrs)
}
