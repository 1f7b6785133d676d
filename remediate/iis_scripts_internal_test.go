package remediate

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

// TestIISEx2003ScriptHygiene checks the iis-* and ex2003-* scripts against
// the rules every relaylock script follows: ASCII, a header naming the
// script, product, mode and idempotency, parameters read only from $P, no
// PowerShell 3+ constructs, no dynamic code, and the record types the
// driver decodes.
func TestIISEx2003ScriptHygiene(t *testing.T) {
	scripts := map[string]struct {
		product, mode string
		records       []string
		params        []string
	}{
		ScriptIISRead:        {"IIS-SMTP", "read", []string{iisRecService, iisRecGuest, iisRecSvc, iisRecVS, iisRecDomain, iisRecADSI, "error"}, nil},
		ScriptIISWrite:       {"IIS-SMTP", "write", []string{iisRecSvc, iisRecVS, iisRecADSI, "error"}, []string{"server", "relayiplist", "relayforauth"}},
		ScriptIISWriteDomain: {"IIS-SMTP", "write", []string{iisRecDomain, "error"}, []string{"domain", "routeaction"}},
		ScriptEx2003ReadAD:   {"Exchange2003", "read", []string{recADDC, recADSchema, recADVS, "error"}, []string{"relayiplistattr", "dc", HopUserParam, HopPasswordParam}},
		ScriptEx2003WriteAD:  {"Exchange2003", "write", []string{recADVS, "error"}, []string{"dn", "relayiplistattr", "relayiplist", "relayforauth", "dc", HopUserParam, HopPasswordParam}},
	}
	forbidden := regexp.MustCompile(`(?i)(Invoke-Expression|\biex\b|ScriptBlock\]::Create|ConvertTo-Json|ConvertFrom-Json|CimInstance|CimSession|\[pscustomobject\]|::new\(|\s-in\s|\s-notin\s|\[ordered\]|Add-Type)`)
	// PowerShell variable names are case-insensitive: $p is $P, the
	// parameter table RL-End reads the nonce from.
	clobberP := regexp.MustCompile(`(?i)(\$p\s*=[^=]|foreach\s*\(\s*\$p\s+in\b|param\s*\([^)]*\$p\b)`)
	paramRef := regexp.MustCompile(`\$P\['([^']*)'\]`)
	for name, want := range scripts {
		t.Run(name, func(t *testing.T) {
			s, err := templates.Script(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range []byte(s) {
				if c > 0x7E || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
					t.Fatalf("non-ASCII byte 0x%02X at %d", c, i)
				}
			}
			head := strings.Join(strings.SplitN(s, "\n", 6)[:5], "\n")
			if !strings.HasPrefix(s, "# "+name+":") || !strings.Contains(head, "Product: "+want.product) ||
				!strings.Contains(head, "Mode: "+want.mode) || !strings.Contains(s, "Idempotency:") {
				t.Errorf("header must name the script, product %s, mode %s and idempotency", want.product, want.mode)
			}
			if m := forbidden.FindString(s); m != "" {
				t.Errorf("forbidden construct %q", m)
			}
			if m := clobberP.FindString(s); m != "" {
				t.Errorf("assigns $P (case-insensitive): %q", m)
			}
			if !strings.Contains(s, "RL-End 0") {
				t.Error("does not end with RL-End 0")
			}
			for _, rec := range want.records {
				// RL-ErrRec (prologue) prints the "error" record of a caught exception.
				if !strings.Contains(s, "RL-Rec '"+rec+"'") && !(rec == psframe.ErrorRecord && strings.Contains(s, "RL-ErrRec ")) {
					t.Errorf("never prints record %q", rec)
				}
			}
			got := map[string]bool{}
			for _, m := range paramRef.FindAllStringSubmatch(s, -1) {
				got[m[1]] = true
			}
			for _, p := range want.params {
				if !got[p] {
					t.Errorf("does not read parameter %q", p)
				}
				delete(got, p)
			}
			for p := range got {
				t.Errorf("reads undeclared parameter %q", p)
			}
		})
	}
}

// TestIISStateRecordsRoundTrip: what the lab prints (encodeIISState) is
// what the driver decodes.
func TestIISStateRecordsRoundTrip(t *testing.T) {
	st := IISState{
		Service:      ServiceInfo{Name: "SMTPSVC", Present: true, State: "Running", StartMode: "Auto"},
		Guest:        &GuestAccount{Name: "Gast", Enabled: true},
		ServiceLevel: &IISRelaySettings{Name: "SmtpSvc", RelayIpList: RelayListBlob{Bytes: []byte{}}, RelayForAuth: 1},
		Servers: []IISVirtualServer{
			// The decoder derives RelayIpListFrom: no value is inherited, a
			// value unlike the service level's is the server's own.
			{Name: "SmtpSvc/1", Comment: "x y", RelayIpList: RelayListBlob{Null: true}, RelayIpListFrom: RelayFromInherited, RelayForAuth: -1, AuthFlags: "7", AuthBasic: true, SmartHost: "[10.0.0.1]", SmartHostType: 2},
			{Name: "SmtpSvc/2", RelayIpList: RelayListBlob{Bytes: []byte{0x18, 0, 0, 0x80}}, RelayIpListFrom: RelayFromOwn},
		},
		Domains: []IISDomain{{Name: "SmtpSvc/1/Domain/*", RouteAction: 0x1002, RelayIpList: RelayListBlob{Null: true}}},
		ADSI: []IISADSIView{
			{Name: "SmtpSvc/1", Present: true, IPGrant: []string{"127.0.0.1, 255.255.255.255", "10.0.0.0, 255.0.0.0"}},
			{Name: "SmtpSvc/2", Error: "Unknown error (0x80005000)"},
			{Name: "SmtpSvc/3", Own: new(bool)},
		},
	}
	// Through the real framing, so $null and "" survive as they would.
	out, err := psframe.DecodeOutput("n", psframe.EncodeOutput("n", encodeIISState(st), 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeIISState(out)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(st)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("round trip:\n got %s\nwant %s", b, a)
	}
	if !got.ServiceLevel.RelayIpList.Equal(RelayListBlob{Bytes: []byte{}}) || got.ServiceLevel.RelayIpList.Null || !got.Servers[0].RelayIpList.Null {
		t.Fatal("null and zero-length lists mixed up")
	}
	ad := Ex2003ADServer{DN: "CN=1,CN=SMTP", RelayIpList: RelayListBlob{Bytes: []byte{}}, RelayForAuth: "False"}
	out, err = psframe.DecodeOutput("n", psframe.EncodeOutput("n", []psframe.Record{ex2003ADRecord(ad)}, 0))
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeADServer(out.Records[0])
	if err != nil || back.DN != ad.DN || !back.RelayIpList.Equal(ad.RelayIpList) || back.RelayIpList.Null || back.RelayForAuthOn() {
		t.Fatalf("AD record round trip: %+v %v", back, err)
	}
}
