package engagement

import (
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

// An Exchange 2003 virtual server's object is a ~180-character DN: the
// table must not pad every row to it. Long objects head their own group
// of settings, printed in full once; short ones keep the one table.
func TestWriteInspectionLongObjects(t *testing.T) {
	dn := "CN=1,CN=SMTP,CN=Protocols,CN=MAIL03,CN=Servers,CN=First Administrative Group,CN=Administrative Groups," +
		"CN=Corp,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=corp,DC=example"
	for _, tc := range []struct {
		name     string
		settings []remediate.Setting
		maxLine  int
		want     []string
	}{
		{"exchange 2003", []remediate.Setting{
			{Object: "Service SMTPSVC", Name: "State", Value: "Running"},
			{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "all except the list below: (empty)"},
			{Object: dn, Name: "msExchSmtpRelayIpList", Value: "(empty)"},
			{Object: dn, Name: "msExchSmtpRelayForAuth", Value: "True"},
		}, len(dn) + 4, []string{"  " + dn + "\n", "    msExchSmtpRelayIpList   (empty)\n", "  SmtpSvc/1\n    RelayIpList"}},
		{"iis", []remediate.Setting{
			{Object: "Service SMTPSVC", Name: "State", Value: "Running"},
			{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "all except the list below: (empty)"},
		}, 80, []string{"  OBJECT           SETTING      VALUE\n", "  SmtpSvc/1        RelayIpList  all except"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeInspection(&b, &remediate.Inspection{Host: "127.0.0.1", Platform: remediate.PlatformExchange2003, Settings: tc.settings})
			out := b.String()
			for _, l := range strings.Split(out, "\n") {
				if len(l) > tc.maxLine {
					t.Errorf("line of %d characters (want at most %d): %q", len(l), tc.maxLine, l)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Count(out, dn) > 1 {
				t.Errorf("the DN is printed %d times:\n%s", strings.Count(out, dn), out)
			}
		})
	}
}
