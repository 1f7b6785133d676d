package engagement

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/audit"
)

// auditFormats are the values of `relaylock audit --format`.
var auditFormats = []string{"text", "json", "jsonl", "csv"}

// auditCSVHeader names the columns of `relaylock audit --format csv`.
var auditCSVHeader = []string{"client", "target", "kind", "mx_host", "preference", "address", "port", "tls",
	"verdict", "confirmation", "triggers", "accepted_as_local", "reason", "banner"}

// writeAuditCSV writes one row per endpoint (RFC 4180, with a header
// row), and one row for a target that has no endpoint (no MX, a DNS
// failure), for spreadsheets. mx_host and preference are empty for an
// address target, which had no MX lookup; a host name without MX records
// is its own implicit MX at preference 0 (RFC 5321 §5.1). Banners and replies come from the server:
// control characters are escaped visibly and cells that a spreadsheet
// would take for a formula are prefixed with a single quote (csvSafe).
func writeAuditCSV(w io.Writer, r *audit.Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(auditCSVHeader); err != nil {
		return err
	}
	for _, t := range r.Targets {
		if len(t.Endpoints) == 0 {
			row := []string{t.Client, t.Target, t.Kind, "", "", "", "", "", string(t.Verdict), "", strings.Join(t.Triggers, " "), "", t.Reason, ""}
			if err := cw.Write(csvSafe(row)); err != nil {
				return err
			}
			continue
		}
		for _, ep := range t.Endpoints {
			asLocal := 0
			for _, tr := range ep.Tests {
				if tr.Outcome == audit.OutcomeAcceptedAsLocal {
					asLocal++
				}
			}
			mxHost, pref := ep.MXHost, strconv.Itoa(ep.Preference)
			if t.Kind == "address" { // no MX lookup: no MX host, no preference
				mxHost, pref = "", ""
			}
			row := []string{t.Client, t.Target, t.Kind, mxHost, pref, ep.Address, strconv.Itoa(ep.Port), ep.TLS,
				string(ep.Verdict), string(ep.Confirmation), strings.Join(ep.Triggers, " "), strconv.Itoa(asLocal), ep.Reason, ep.Banner}
			if err := cw.Write(csvSafe(row)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe makes every cell safe to show: control characters are escaped
// visibly (\x1b) and invalid UTF-8 replaced, as in the text output
// (audit.Printable), so that `cat` on a terminal interprets nothing; and
// cells a spreadsheet would evaluate (OWASP "CSV injection": a leading =,
// +, -, @, tab or carriage return) are neutralised.
func csvSafe(row []string) []string {
	for i, s := range row {
		s = audit.Printable(s)
		row[i] = s
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			row[i] = "'" + s
		}
	}
	return row
}
