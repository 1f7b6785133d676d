package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// linkFixture links the fixture's records by ID, as this version records
// them: inspections carry their ID, each change names the inspection it
// was planned from, each re-test the change it verifies.
func linkFixture(b *evidence.Bundle) *evidence.Bundle {
	for i := range b.Inspections {
		b.Inspections[i].ID = b.Inspections[i].Ref()
	}
	b.Changes[0].Inspection = b.Inspections[0].ID // mx1, IIS
	b.Changes[1].Inspection = b.Inspections[1].ID // mx2, Exchange
	b.Audits[1].Change = b.Changes[0].ID
	b.Audits[2].Change = b.Changes[1].ID
	return b
}

// findingLines is what the model ties to each finding: its status, the
// inspection (by its index in the evidence) and the changes.
func findingLines(t *testing.T, b *evidence.Bundle) []string {
	t.Helper()
	m, err := buildModel(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range m.findings {
		insp := -1
		for i := range b.Inspections {
			if f.Insp == &b.Inspections[i] {
				insp = i
			}
		}
		var ch []string
		for _, c := range f.Changes {
			ch = append(ch, c.ID)
		}
		out = append(out, fmt.Sprintf("%s %s insp=%d changes=%s", f.ID, f.StatusKey, insp, strings.Join(ch, ",")))
	}
	return out
}

var fixtureFindings = []string{
	"RLY-001 remediated insp=0 changes=RL-CHG-0001",
	"RLY-002 remediated insp=1 changes=RL-CHG-0002",
	"CFG-001 open insp=2 changes=",
}

// The fixture's records tie together the same way by ID as by host name.
func TestLinksTieAsHostNamesDid(t *testing.T) {
	if got := findingLines(t, fixtureBundle()); !slices.Equal(got, fixtureFindings) {
		t.Fatalf("by host name:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(fixtureFindings, "\n"))
	}
	if got := findingLines(t, linkFixture(fixtureBundle())); !slices.Equal(got, fixtureFindings) {
		t.Errorf("by ID:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(fixtureFindings, "\n"))
	}
}

// Records whose host names differ from the audit's (by case and trailing
// dot, or altogether: WinRM reached by an internal name or address) are
// tied by their IDs. Without the IDs, host names that differ altogether
// tie nothing.
func TestLinksIgnoreHostNames(t *testing.T) {
	rename := func(names map[string]string, audits bool) func(b *evidence.Bundle) {
		return func(b *evidence.Bundle) {
			for i := range b.Inspections {
				in := &b.Inspections[i]
				if n, ok := names[in.Host]; ok {
					in.Host = n
					in.HostInfo.ComputerName = strings.ToUpper(strings.TrimSuffix(strings.Split(n, ".")[0], "."))
				}
			}
			for i := range b.Changes {
				if n, ok := names[b.Changes[i].Host]; ok {
					b.Changes[i].Host = n
				}
			}
			for i := range b.Audits {
				if n, ok := names[b.Audits[i].Host]; ok && audits {
					b.Audits[i].Host = n
				}
			}
		}
	}
	tests := []struct {
		name     string
		edit     func(b *evidence.Bundle)
		unlinked []string // by host name, without the IDs
	}{
		{"case and trailing dot", rename(map[string]string{"mx1.example.com": "MX1.Example.COM.", "mx2.example.com": "Mx2.EXAMPLE.com."}, true),
			fixtureFindings},
		// The hosts were inspected and changed through other names than
		// the ones their re-tests recorded.
		{"other names", rename(map[string]string{"mx1.example.com": "10.9.9.1", "mx2.example.com": "ex-a.corp.internal"}, false),
			[]string{
				// The relays look closed with no change, and their
				// causes reappear as separate findings.
				"RLY-001 resolved insp=-1 changes=",
				"RLY-002 resolved insp=-1 changes=",
				"CFG-001 config_remediated insp=0 changes=RL-CHG-0001",
				"CFG-002 config_remediated insp=1 changes=RL-CHG-0002",
				"CFG-003 open insp=2 changes=",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := fixtureBundle()
			tc.edit(b)
			if got := findingLines(t, b); !slices.Equal(got, tc.unlinked) {
				t.Errorf("without IDs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.unlinked, "\n"))
			}
			b = fixtureBundle()
			tc.edit(b)
			linkFixture(b)
			if got := findingLines(t, b); !slices.Equal(got, fixtureFindings) {
				t.Errorf("with IDs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(fixtureFindings, "\n"))
			}
		})
	}
}

// A rollback names the inspection its backup holds: it joins the
// remediation's finding by ID, even when made through another host name,
// and once it restored the state the change is no longer in effect.
func TestLinkedRollback(t *testing.T) {
	b := linkFixture(fixtureBundle())
	rb := b.Changes[0]
	rb.ID, rb.Kind, rb.Result, rb.Host = "RL-CHG-0003", remediate.ChangeRollback, remediate.ResultRestored, "10.9.9.1"
	rb.Start, rb.End = at(600), at(610)
	b.Changes = append(b.Changes, rb)
	want := slices.Clone(fixtureFindings)
	want[0] = "RLY-001 resolved insp=0 changes=RL-CHG-0001,RL-CHG-0003"
	if got := findingLines(t, b); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// By host name the rollback through another name is lost, and the
	// change still counts as remediated.
	for i := range b.Changes {
		b.Changes[i].Inspection = ""
	}
	if got := findingLines(t, b); got[0] != fixtureFindings[0] {
		t.Errorf("by host name: %s, want %s", got[0], fixtureFindings[0])
	}
}

// A link that names nothing in the evidence ties the record by host
// name, as before links existed (verify notes the link: evidence
// TestCheckLinks).
func TestDanglingLinkFallsBack(t *testing.T) {
	b := linkFixture(fixtureBundle())
	b.Changes[0].Inspection = "INS-20260506T070000Z-00000000"
	b.Audits[2].Change = "CHG-NOT-RECORDED"
	if got := findingLines(t, b); !slices.Equal(got, fixtureFindings) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(fixtureFindings, "\n"))
	}
}

// applied reads each kind and result the way remediate documents them.
func TestApplied(t *testing.T) {
	rem := func(r remediate.ChangeResult) *remediate.ChangeRecord {
		return &remediate.ChangeRecord{Kind: remediate.ChangeRemediate, Result: r}
	}
	rb := func(r remediate.ChangeResult) *remediate.ChangeRecord {
		return &remediate.ChangeRecord{Kind: remediate.ChangeRollback, Result: r}
	}
	tests := []struct {
		name string
		cs   []*remediate.ChangeRecord
		want bool
	}{
		{"none", nil, false},
		{"applied", []*remediate.ChangeRecord{rem(remediate.ResultApplied)}, true},
		{"partial", []*remediate.ChangeRecord{rem(remediate.ResultPartial)}, true},
		{"rolled back", []*remediate.ChangeRecord{rem(remediate.ResultRolledBack)}, false},
		{"failed", []*remediate.ChangeRecord{rem(remediate.ResultFailed)}, false},
		{"pending", []*remediate.ChangeRecord{rem(remediate.ResultPending)}, false},
		{"failed after applied", []*remediate.ChangeRecord{rem(remediate.ResultApplied), rem(remediate.ResultFailed)}, true},
		{"rollback restored", []*remediate.ChangeRecord{rem(remediate.ResultApplied), rb(remediate.ResultRestored)}, false},
		{"rollback pending", []*remediate.ChangeRecord{rem(remediate.ResultApplied), rb(remediate.ResultPending)}, false},
		{"rollback failed", []*remediate.ChangeRecord{rem(remediate.ResultApplied), rb(remediate.ResultFailed)}, true},
		{"rollback interrupted", []*remediate.ChangeRecord{rem(remediate.ResultApplied), rb(remediate.ResultInterrupted)}, true},
		{"applied again after a rollback", []*remediate.ChangeRecord{rem(remediate.ResultApplied), rb(remediate.ResultRestored), rem(remediate.ResultApplied)}, true},
		{"unknown kind", []*remediate.ChangeRecord{rem(remediate.ResultApplied), {Kind: "reboot", Result: remediate.ResultRestored}}, true},
		{"unknown result", []*remediate.ChangeRecord{rem("queued")}, false},
	}
	for _, tc := range tests {
		if got := applied(tc.cs); got != tc.want {
			t.Errorf("%s: applied %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsRetest(t *testing.T) {
	for p, want := range map[evidence.Purpose]bool{
		evidence.PurposeAudit: false, evidence.PurposeRetest: true, evidence.PurposeRollbackRetest: true,
		"": false, "pre-retest-audit": false,
	} {
		if got := isRetest(p); got != want {
			t.Errorf("isRetest(%q) = %v, want %v", p, got, want)
		}
	}
}

// Evidence written before links existed renders through byHostName
// exactly as before: the PDF of the legacy fixture is the one the report
// rendered before links were added, byte for byte (testdata/legacy.pdf.sha256;
// go test -update rewrites it when the rendering changes on purpose).
func TestLegacyEvidenceRendersAsBefore(t *testing.T) {
	const sumFile = "testdata/legacy.pdf.sha256"
	b, err := evidence.Load("evidence/testdata/legacy.evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range b.Audits {
		if a.Change != "" {
			t.Fatal("the legacy fixture has links")
		}
	}
	for _, c := range b.Changes {
		if c.Inspection != "" {
			t.Fatal("the legacy fixture has links")
		}
	}
	if got := findingLines(t, b); !slices.Equal(got, fixtureFindings) {
		t.Errorf("legacy fixture:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(fixtureFindings, "\n"))
	}
	data, _ := renderFixture(t, b, Options{})
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:]) + "\n"
	if *update {
		if err := os.WriteFile(sumFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(sumFile)
	if err != nil || !bytes.Equal(want, []byte(got)) {
		t.Errorf("the legacy fixture's PDF has sha256 %s, want %s (%v)", strings.TrimSpace(got), strings.TrimSpace(string(want)), err)
	}
}

// Rows are keyed by audit.EndpointKey: a re-test that writes the address
// another way meets the first audit's row.
func TestRowsMeetOnEndpointKey(t *testing.T) {
	b := fixtureBundle()
	re := *b.Audits[2].Result
	re.Targets = slices.Clone(re.Targets)
	re.Targets[0].Endpoints = slices.Clone(re.Targets[0].Endpoints)
	re.Targets[0].Endpoints[0].Address = "2001:DB8:0:0::25"
	b.Audits[2].Result = &re
	m, err := buildModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.rows) != 5 || m.rows[1].afterStatus() != stClosed {
		t.Errorf("%d rows, mx2 after %s; want 5 rows and CLOSED", len(m.rows), m.rows[1].afterStatus())
	}
	if k := audit.EndpointKey(re.Targets[0].Endpoints[0]); k != "[2001:db8::25]:25/none" {
		t.Errorf("key %s", k)
	}
}
