package report

import (
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

const iisFix = `Run relaylock remediate: it sets "Only the list below" with the allowed clients (and 127.0.0.1), keeps or clears authenticated relay as requested, and proves the result with a re-probe.`

// TestFixTextFollowsLoopback (tryout 16): the finding's fix text says
// "(and 127.0.0.1)" only when the change applied (or planned) put
// 127.0.0.1 in the relay list; after --no-loopback it says so, and with
// nothing planned it names the option.
func TestFixTextFollowsLoopback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*testing.T, []*finding)
		want  string
		never string
	}{
		{"applied with loopback", func(*testing.T, []*finding) {}, "allowed clients (and 127.0.0.1), keeps", "unless"},
		{"applied without loopback", func(t *testing.T, fs []*finding) {
			c := fs[0].Changes[0]
			c.Applied = []remediate.Change{{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only the list below: 10.1.2.3"}}
		}, "allowed clients (without 127.0.0.1: the change was made with --no-loopback), keeps", "(and 127.0.0.1)"},
		{"planned only, without loopback", func(t *testing.T, fs []*finding) {
			c := fs[0].Changes[0]
			c.Result, c.Applied = remediate.ResultFailed, nil
			c.Planned = []remediate.Change{{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only the list below: 10.1.2.3"}}
		}, "(without 127.0.0.1: the change was made with --no-loopback)", "(and 127.0.0.1)"},
		{"nothing planned", func(t *testing.T, fs []*finding) { fs[0].Changes = nil }, "(and 127.0.0.1, unless --no-loopback)", "(and 127.0.0.1),"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fixtureBundle()
			if tc.name == "nothing planned" {
				b.Plans = nil
			}
			b.Inspections[0].Findings[0].Remediation = iisFix
			m, err := buildModel(b)
			if err != nil {
				t.Fatal(err)
			}
			r := newRenderer(m, defaultTexts(), Options{}, nil)
			f := m.findings[0]
			if f.Host != "mx1.example.com" || len(f.Causes) == 0 {
				t.Fatalf("first finding is %s on %s", f.ID, f.Host)
			}
			tc.edit(t, m.findings)
			got := r.fixText(f, f.Causes[0].Remediation)
			if !strings.Contains(got, tc.want) || strings.Contains(got, tc.never) {
				t.Errorf("fix text %q, want %q and not %q", got, tc.want, tc.never)
			}
		})
	}
}

// TestFixTextInPDF: the finding's Remediation field prints the fix text
// as fixText words it.
func TestFixTextInPDF(t *testing.T) {
	b := fixtureBundle()
	b.Inspections[0].Findings[0].Remediation = iisFix
	noLoop := []remediate.Change{{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only the list below: 10.1.2.3"}}
	b.Changes[0].Planned, b.Changes[0].Applied = noLoop, noLoop
	data, _ := renderFixture(t, b, Options{})
	text := strings.Join(strings.Fields(pdfText(t, data)), " ")
	if !strings.Contains(text, "(without 127.0.0.1: the change was made with --no-loopback)") || strings.Contains(text, "allowed clients (and 127.0.0.1)") {
		t.Error("the PDF's fix text does not follow the change made with --no-loopback")
	}
}
