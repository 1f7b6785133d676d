package engagement

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
)

func TestCSVInjectionNeutralised(t *testing.T) {
	r := &audit.Result{Targets: []audit.TargetResult{{Target: "=HYPERLINK(\"x\")", Endpoints: []audit.EndpointResult{{
		Address: "192.0.2.1", Port: 25, Verdict: audit.VerdictClosed, Banner: "@SUM(1)", Reason: "+1", MXHost: "-mx"}}}}}
	var b bytes.Buffer
	if err := writeAuditCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range rows[1] {
		if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
			t.Errorf("cell %q would be a formula in a spreadsheet", cell)
		}
	}
}

// mx_host and preference come from an MX lookup: an address target had
// none, so both are empty, not the address and a made-up 0. A domain's
// MX host keeps its preference, and a host name without MX records is its
// own implicit MX at preference 0 (RFC 5321 §5.1).
func TestCSVMXColumns(t *testing.T) {
	r := &audit.Result{Targets: []audit.TargetResult{
		{Target: "192.0.2.7", Kind: "address", Endpoints: []audit.EndpointResult{{MXHost: "192.0.2.7", Address: "192.0.2.7", Port: 25, Verdict: audit.VerdictClosed}}},
		{Target: "corp.example", Kind: "domain", Endpoints: []audit.EndpointResult{{MXHost: "mail.corp.example", Preference: 10, Address: "192.0.2.8", Port: 25, Verdict: audit.VerdictClosed}}},
		{Target: "mx.example", Kind: "host", Endpoints: []audit.EndpointResult{{MXHost: "mx.example", Address: "192.0.2.9", Port: 25, Verdict: audit.VerdictClosed}}},
	}}
	var b bytes.Buffer
	if err := writeAuditCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, want := range [][2]string{{"", ""}, {"mail.corp.example", "10"}, {"mx.example", "0"}} {
		row := rows[i+1]
		if got := [2]string{row[col["mx_host"]], row[col["preference"]]}; got != want {
			t.Errorf("%s: mx_host, preference = %q, want %q", row[col["target"]], got, want)
		}
		if row[col["address"]] == "" {
			t.Errorf("%s: no address", row[col["target"]])
		}
	}
}
