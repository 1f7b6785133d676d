package remediate

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// The files in testdata/hostoutput are script outputs as a real host
// prints them, written by hand from Microsoft's documented object shapes
// (testdata/hostoutput/mkframes.py says where each value comes from), not
// by relaylock's encoders. The decoders must read them; the expected
// values below are read off the documentation, not off an encoder.

const hostOutputNonce = "00112233445566778899aabbccddeeff"

func hostOutput(t *testing.T, name string) *psframe.Output {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hostoutput", name))
	if err != nil {
		t.Fatal(err)
	}
	out, err := psframe.DecodeOutput(hostOutputNonce, b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func TestHostOutputDetect(t *testing.T) {
	h, err := decodeHostInfo(hostOutput(t, "detect-exchange2003.txt").Records)
	if err != nil {
		t.Fatal(err)
	}
	if h.Platform != PlatformExchange2003 || h.ExchangeVersion != "2003" || h.ExchangeBuild != "6.5.7638" ||
		h.ExchangeServerAdmin != `C:\Program Files\Exchsrvr` || h.PSVersion != "2.0" || h.Is64BitProcess ||
		h.OSVersion != "5.2.3790" || h.ComputerName != "EXCH03" || h.Domain != "corp.example.com" {
		t.Errorf("exchange 2003: %+v", h)
	}
	if got := MailService(h); got != "SMTPSVC" {
		t.Errorf("mail service %q", got)
	}

	h, err = decodeHostInfo(hostOutput(t, "detect-exchange2016-de.txt").Records)
	if err != nil {
		t.Fatal(err)
	}
	wantRoles := []string{"AdminTools", "Cafe", "ClientAccess", "FrontendTransport", "HubTransport", "Mailbox", "UnifiedMessaging"}
	if h.Platform != PlatformExchange || h.ExchangeVersion != "2016" || h.ExchangeBuild != "15.1.2507.6" ||
		!reflect.DeepEqual(h.ExchangeRoles, wantRoles) || !h.Is64BitProcess || h.ExchangeServerAdmin != "" {
		t.Errorf("exchange 2016: %+v", h)
	}
	if got := MailService(h); got != "MSExchangeFrontEndTransport" {
		t.Errorf("mail service %q", got)
	}
	if want := []FeatureInfo{{Name: "SMTP-Server"}, {Name: "Web-WMI", Installed: true}}; !reflect.DeepEqual(h.Features, want) {
		t.Errorf("features %+v", h.Features)
	}
}

func TestHostOutputIISSampleA(t *testing.T) {
	st, err := DecodeIISState(hostOutput(t, "iis-read-sample-a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Servers) != 1 || st.Servers[0].Name != "SmtpSvc/1" || st.Servers[0].RelayForAuth != -1 ||
		!st.Servers[0].AuthAnonymous || st.Servers[0].AuthBasic || st.Guest == nil || st.Guest.Name != "Gast" || st.Guest.Enabled {
		t.Fatalf("state %+v", st)
	}
	// Sample A: "Only the list below" = {127.0.0.1}.
	l, err := st.Servers[0].RelayIpList.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if l.Null || l.GrantByDefault || len(l.Grant) != 1 || len(l.Deny) != 0 || l.Flags != 1 {
		t.Fatalf("sample A decodes to %+v", l)
	}
	if !l.Allows(netip.MustParseAddr("127.0.0.1")) || l.Allows(netip.MustParseAddr("127.0.0.2")) || l.IsOpenToAll() {
		t.Errorf("sample A: %s", l.Describe())
	}
	// The service level's zero-length list is "all except" nothing: open,
	// and inherited by any virtual server without a list of its own.
	if st.ServiceLevel == nil {
		t.Fatal("no service level")
	}
	sl, err := st.ServiceLevel.RelayIpList.Decode()
	if err != nil || sl.Null || !sl.IsOpenToAll() {
		t.Errorf("service level list %+v (%v)", sl, err)
	}
	if len(st.Domains) != 1 || st.Domains[0].RouteAction != 0 {
		t.Errorf("domains %+v", st.Domains)
	}
	if len(st.ADSI) != 1 || st.ADSI[0].GrantByDefault || len(st.ADSI[0].IPGrant) != 1 {
		t.Errorf("adsi %+v", st.ADSI)
	}
}

func TestHostOutputExchangeRead(t *testing.T) {
	s, err := decodeExchangeRead(hostOutput(t, "exchange-read-anonymous-relay.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Server != "EX16" || !s.RoleAware || len(s.Connectors) != 2 || len(s.Domains) != 1 || !s.Domains[0].Default {
		t.Fatalf("state %+v", s)
	}
	var relay *ExchangeConnector
	for i := range s.Connectors {
		if s.Connectors[i].Name == "Anonymous Relay" {
			relay = &s.Connectors[i]
		}
	}
	if relay == nil {
		t.Fatal("no Anonymous Relay connector")
	}
	if relay.TransportRole != "FrontendTransport" || !reflect.DeepEqual(relay.RemoteIPRanges, []string{"192.168.5.10", "192.168.5.11"}) ||
		!reflect.DeepEqual(relay.PermissionGroups, []string{"AnonymousUsers"}) || len(relay.AnyRecipient) != 1 ||
		relay.AnyRecipient[0].SID != "S-1-5-7" || relay.AnyRecipient[0].Inherited {
		t.Errorf("anonymous relay connector %+v", relay)
	}
}

// A German host without Web-WMI: classified by HRESULT, message kept.
func TestHostOutputLocalizedError(t *testing.T) {
	out := hostOutput(t, "iis-read-no-webwmi-de.txt")
	if out.ExitCode != 3 {
		t.Fatalf("exit code %d", out.ExitCode)
	}
	es := ScriptErrors(out)
	if len(es) != 1 || es[0].HResult != hresultInvalidNamespace || es[0].Message != "Ungültiger Namespace" {
		t.Fatalf("errors %+v", es)
	}
	run := &ScriptRun{Script: ScriptIISRead, ExitCode: 3, Output: out}
	if err := CheckRun("h", run); !errors.Is(err, ErrFeatureMissing) {
		t.Errorf("CheckRun = %v, want ErrFeatureMissing", err)
	}
}

// CLIXML stderr of a German host in code page 437 (MS-PSRP 2.2.5).
func TestHostOutputCLIXMLGerman(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "hostoutput", "stderr-clixml-de.cp437"))
	if err != nil {
		t.Fatal(err)
	}
	got := CLIXMLMessages(DecodeConsole(b))
	want := []string{
		"Get-WmiObject : Ungültiger Namespace",
		"In Zeile:1 Zeichen:14",
		`+ Get-WmiObject <<<<  -Namespace root\MicrosoftIISv2 -Class IIsSmtpServerSetting`,
		"Größe überschritten",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("messages:\n got %q\nwant %q", got, want)
	}
}
