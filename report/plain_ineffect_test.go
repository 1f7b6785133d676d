package report

import (
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

// TestPlainSummaryNamesChangeInEffect: after remediate, rollback and a
// second remediate with another allow list, the plain words name the
// second change and its allow list, say that the first was rolled back,
// and count only the second change's further settings (IIS and Exchange).
func TestPlainSummaryNamesChangeInEffect(t *testing.T) {
	tx := defaultTexts()
	b := fixtureBundle()
	iisFirst := []remediate.Change{
		{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only the list below: 192.0.2.110", Why: "IIS-RELAY-ALL-EXCEPT-EMPTY"},
		{Object: "SmtpSvc/1", Setting: "RelayIpList.raw", Current: "00", New: "01", Why: "exact value written"},
		{Object: "SmtpSvc/1", Setting: "RelayForAuth", Current: "0", New: "1", Why: "auth"},
		{Object: "SmtpSvc/1", Setting: "AuthFlags", Current: "anonymous", New: "anonymous, ntlm", Why: "auth"},
	}
	iisSecond := []remediate.Change{
		{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only the list below: 192.0.2.120", Why: "IIS-RELAY-ALL-EXCEPT-EMPTY"},
		{Object: "SmtpSvc/1", Setting: "RelayIpList.raw", Current: "00", New: "02", Why: "exact value written"},
		{Object: "SmtpSvc/1", Setting: "RelayForAuth", Current: "0", New: "1", Why: "auth"},
	}
	conn := `Receive connector MX2\Relay MX2`
	exFirst := []remediate.Change{
		{Object: `Receive connector MX2\Default Frontend MX2`, Setting: "AnonymousUsers rights", Current: "ms-Exch-SMTP-Accept-Any-Recipient", New: "(none)", Why: "EXCH-ANON-ACCEPT-ANY-RECIPIENT"},
		{Object: conn, Setting: "RemoteIPRanges", Current: "(absent)", New: "192.0.2.110", Why: "dedicated"},
		{Object: conn, Setting: "Bindings", Current: "(absent)", New: "0.0.0.0:25", Why: "dedicated"},
		{Object: conn, Setting: "PermissionGroups", Current: "(absent)", New: "AnonymousUsers", Why: "dedicated"},
	}
	exSecond := []remediate.Change{
		{Object: `Receive connector MX2\Default Frontend MX2`, Setting: "AnonymousUsers rights", Current: "ms-Exch-SMTP-Accept-Any-Recipient", New: "(none)", Why: "EXCH-ANON-ACCEPT-ANY-RECIPIENT"},
		{Object: conn, Setting: "RemoteIPRanges", Current: "(absent)", New: "192.0.2.120", Why: "dedicated"},
	}
	iis, ex := b.Changes[0], b.Changes[1]
	rec := func(base remediate.ChangeRecord, id string, kind remediate.ChangeKind, result remediate.ChangeResult, end int, applied []remediate.Change) remediate.ChangeRecord {
		base.ID, base.Kind, base.Result, base.End, base.Applied, base.Planned = id, kind, result, at(end), applied, applied
		return base
	}
	b.Changes = []remediate.ChangeRecord{
		rec(iis, "CHG-IIS-1", remediate.ChangeRemediate, remediate.ResultApplied, 201, iisFirst),
		rec(ex, "CHG-EX-1", remediate.ChangeRemediate, remediate.ResultApplied, 301, exFirst),
		rec(iis, "CHG-IIS-RB", remediate.ChangeRollback, remediate.ResultRestored, 320, iisFirst),
		rec(ex, "CHG-EX-RB", remediate.ChangeRollback, remediate.ResultRestored, 330, exFirst),
		rec(iis, "CHG-IIS-2", remediate.ChangeRemediate, remediate.ResultApplied, 340, iisSecond),
		rec(ex, "CHG-EX-2", remediate.ChangeRemediate, remediate.ResultApplied, 350, exSecond),
	}
	got := plainOf(t, b, tx)
	for _, want := range []string{
		"An earlier change, CHG-IIS-1, was rolled back: it is not in effect.",
		`changed RelayIpList of SmtpSvc/1 from "all except: (empty)" to "only the list below: 192.0.2.120" and 1 further setting(s) (change CHG-IIS-2, ticket CHG-4711).`,
		"An earlier change, CHG-EX-1, was rolled back: it is not in effect.",
		`changed AnonymousUsers rights of Receive connector MX2\Default Frontend MX2 from "ms-Exch-SMTP-Accept-Any-Recipient" to "(none)" and 1 further setting(s) (change CHG-EX-2, ticket CHG-4711).`,
		`In effect now, RemoteIPRanges of Receive connector MX2\Relay MX2 allows only: 192.0.2.120.`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plain summary lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"192.0.2.110", "change CHG-IIS-1", "change CHG-EX-1", "2 further", "3 further", "4 further", "5 further"} {
		if strings.Contains(got, bad) {
			t.Errorf("plain summary says %q (from the rolled-back change):\n%s", bad, got)
		}
	}

	// Rolled back and not re-applied: no change is named as in effect.
	b.Changes = b.Changes[:4]
	got = plainOf(t, b, tx)
	if !strings.Contains(got, `No change is in effect on it: the last change, CHG-IIS-RB (rollback), ended "restored".`) || strings.Contains(got, "192.0.2.110") {
		t.Errorf("rolled back:\n%s", got)
	}
}
