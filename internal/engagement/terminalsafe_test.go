package engagement

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// terminalSafe fails if out holds a control character other than the line
// ends the format needs, a bidi control (Unicode Standard Annex #9), or
// invalid UTF-8.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s is not valid UTF-8: %q", what, out)
	}
	for _, r := range out {
		bidi := (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || bidi) {
			t.Errorf("%s holds U+%04X: %q", what, r, out)
			return
		}
	}
}

// TestHostTextPrintable: what a host or a server said (computer name,
// setting values, connector names, warnings, reasons) is escaped in
// inspect's and rollback's text output and in the plan.
func TestHostTextPrintable(t *testing.T) {
	insp := &remediate.Inspection{Host: "mail.example", Platform: remediate.PlatformIIS,
		HostInfo: remediate.HostInfo{ComputerName: "MAIL\x1b]0;pwned\x07", OSCaption: "Windows\r\x1b[2J"},
		Warnings: []string{"quota \x1b[31m"},
		Settings: []remediate.Setting{{Object: "Connector \x1b[8m", Name: "RemoteIPRanges", Value: "0.0.0.0-255.255.255.255\x1b[0m\xff"}},
		Findings: []remediate.Finding{{ID: "X", Title: "t\x07", Object: "o\x1b", Setting: "s", Value: "v\x1b", Detail: "d\x9b", Remediation: "r\u202e"}}}
	var b bytes.Buffer
	writeInspection(&b, insp)
	terminalSafe(t, "inspect output", b.String())
	if !strings.Contains(b.String(), `MAIL\x1b]0;pwned\x07`) {
		t.Errorf("the computer name is not shown escaped:\n%s", b.String())
	}
	b.Reset()
	writeEndpointReasons(&b, &audit.Result{Targets: []audit.TargetResult{{Target: "t\x1b", Reason: "r\x1b[2J", Verdict: audit.VerdictInconclusive},
		{Target: "u", Endpoints: []audit.EndpointResult{{Address: "127.0.0.1", Port: 25, Verdict: audit.VerdictInconclusive, Reason: "dropped (421 \x1b[5m\xff)"}}}}}, true)
	terminalSafe(t, "endpoint reasons", b.String())
	b.Reset()
	fmt.Fprint(PrintableLines{W: &b}, remediate.FormatPlan(&remediate.Plan{Host: "h", Platform: remediate.PlatformIIS,
		Changes: []remediate.Change{{Object: "SmtpSvc/1\x1b", Setting: "RelayIpList", Current: "a\x1b[2J", New: "b", Why: "w"}}}))
	terminalSafe(t, "plan", b.String())
	b.Reset()
	WriteMismatches(&b, &evidence.CheckResult{Notes: []string{"n\x1b[2J"}, Problems: []string{"backup b\x1b]0;x\x07.json: file changed"}})
	terminalSafe(t, "verify mismatches", b.String())
}
