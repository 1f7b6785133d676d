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
