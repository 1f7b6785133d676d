package remediate

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

func exchangeScripts(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range templates.ScriptNames() {
		if !strings.HasPrefix(n, "exchange-") {
			continue
		}
		s, err := templates.Script(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	if _, ok := out[ExchangeReadScript]; !ok {
		t.Fatal("exchange-read.ps1 missing")
	}
	if _, ok := out[ExchangeWriteScript]; !ok {
		t.Fatal("exchange-write.ps1 missing")
	}
	return out
}

// Every exchange script loads the shell with the one shared loader
// (templates/powershell/lib/exchange-loader.ps1, expanded once per script)
// and the loader does what docs/windows-relay.md 3.4 asks.
func TestExchangeLoaderIdentical(t *testing.T) {
	re := regexp.MustCompile(`(?s)# BEGIN exchange-loader.*# END exchange-loader`)
	var first, firstName string
	for n, s := range exchangeScripts(t) {
		blocks := re.FindAllString(s, -1)
		if len(blocks) != 1 {
			t.Fatalf("%s: %d loader blocks, want 1", n, len(blocks))
		}
		if first == "" {
			first, firstName = blocks[0], n
			continue
		}
		if blocks[0] != first {
			t.Errorf("%s: loader block differs from %s's", n, firstName)
		}
	}
	for _, must := range []string{"[IntPtr]::Size -ne 8", "Microsoft.Exchange.Management.PowerShell.Admin", "RemoteExchange.ps1",
		"Connect-ExchangeServer -Auto", "exShell.psc1", "Exchange.ps1", "EdgeTransportRole",
		"Exchange Management Shell could not be loaded: ", "'warning'",
		// the second hop: explicit credentials, the supported remote shell, CSS-Exchange's loading
		"New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $rlUri -Credential (RL-HopCred) -Authentication Kerberos",
		"Import-PSSession", "Connect-ExchangeServer -Auto -ClientApplication:ManagementShell", "$ErrorActionPreference = 'Continue'",
		"RL-NetOnly", "Get-ExchangeServer -Identity $env:COMPUTERNAME @rlDCArg", "OriginatingServer"} {
		if !strings.Contains(first, must) {
			t.Errorf("loader block lacks %q", must)
		}
	}
}

// The rules every relaylock script follows (the tree-sitter check of
// another package parses them; these are the Exchange-specific basics).
func TestExchangeScriptRules(t *testing.T) {
	banned := []string{"Invoke-Expression", "iex ", "ScriptBlock]::Create", "ConvertTo-Json", "Get-CimInstance",
		"[pscustomobject]", "::new(", " -in ", " -notin ", "Write-Output", "Write-Host '", "Write-Host \""}
	mode := map[string]string{ExchangeReadScript: "Mode: read", ExchangeWriteScript: "Mode: write"}
	for n, s := range exchangeScripts(t) {
		for i, c := range s {
			if c > 0x7e || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
				t.Errorf("%s: non-ASCII character %q at byte %d", n, c, i)
				break
			}
		}
		for _, b := range banned {
			if strings.Contains(s, b) {
				t.Errorf("%s contains %q", n, b)
			}
		}
		if !strings.HasPrefix(s, "# "+n+":") || !strings.Contains(s, "Product: Exchange") || !strings.Contains(s, mode[n]) ||
			!strings.Contains(s, "Idempoten") {
			t.Errorf("%s: header must name the script, the product, the mode and idempotency", n)
		}
		if !strings.Contains(s, "RL-End 0") {
			t.Errorf("%s does not end with RL-End 0", n)
		}
		// Every record type the driver decodes is printed by the script.
		for _, rec := range map[string][]string{ExchangeReadScript: {"exinfo", "connector", "ace", "domain", "warning"},
			ExchangeWriteScript: {"done", "error"}}[n] {
			if !strings.Contains(s, "RL-Rec '"+rec+"'") {
				t.Errorf("%s never prints record %q", n, rec)
			}
		}
	}
}

// Every field name encodeExchangeState writes appears in the script's
// RL-Rec calls, and every op parameter encodeExchangeOps writes is read
// by exchange-write: the Go mirror and the scripts name the same things.
func TestExchangeWireNamesMatchScripts(t *testing.T) {
	scripts := exchangeScripts(t)
	st := &ExchangeState{Server: "EX1", Loader: "remote", AnonymousSID: anonymousLogonSID, AnonymousName: "A", RoleAware: true,
		Warnings:   []string{"w"},
		Connectors: []ExchangeConnector{{Identity: `EX1\C`, Name: "C", Server: "EX1", Bindings: []string{"0.0.0.0:25"}, AnyRecipient: []ExchangeACE{{User: "A", SID: "S-1-5-7"}}}},
		Domains:    []ExchangeAcceptedDomain{{Name: "d", DomainName: "d", DomainType: "Authoritative"}}}
	for _, r := range encodeExchangeState(st) {
		for _, f := range r.Fields {
			if !strings.Contains(scripts[ExchangeReadScript], "'"+f.Name+"', ") {
				t.Errorf("exchange-read never prints field %s.%s", r.Type, f.Name)
			}
		}
	}
	op := exchangeOp{Kind: opSetConnector, Identity: "i", Name: "n", Server: "s", Role: "r", Set: []string{fieldEnabled}, Enabled: true,
		Bindings: []string{"b"}, Ranges: []string{"r"}, Auth: []string{"a"}, Groups: []string{"g"}, User: "u", SID: "S", DomainName: "d", DomainType: "t"}
	for k := range encodeExchangeOps([]exchangeOp{op}) {
		if k == "ops" {
			if !strings.Contains(scripts[ExchangeWriteScript], "$P['ops']") {
				t.Error("exchange-write does not read ops")
			}
			continue
		}
		field := strings.TrimPrefix(k, "op1_")
		if !strings.Contains(scripts[ExchangeWriteScript], "'"+field+"'") && !strings.Contains(scripts[ExchangeWriteScript], "'_"+field+"'") {
			t.Errorf("exchange-write never reads parameter op<i>_%s", field)
		}
	}
	for _, kind := range []string{opNewConnector, opSetConnector, opRemoveConnector, opAddACE, opRemoveACE, opSetDomain, opNewDomain, opRemoveDomain} {
		if !strings.Contains(scripts[ExchangeWriteScript], "'"+kind+"' {") {
			t.Errorf("exchange-write does not handle %s", kind)
		}
	}
}

func TestExchangeStateRoundTrip(t *testing.T) {
	st := &ExchangeState{Server: "EX1", Loader: "snapin", AnonymousSID: anonymousLogonSID, AnonymousName: "NT-AUTORITÄT\\ANONYMOUS-ANMELDUNG",
		Warnings: []string{"Connect-ExchangeServer failed"},
		Connectors: []ExchangeConnector{
			{Identity: `EX1\B`, Name: "B", Server: "EX1", Enabled: false, Bindings: []string{"0.0.0.0:25", "[::]:25"},
				RemoteIPRanges: []string{"10.0.0.0/8"}, AuthMechanism: []string{"Tls"}, PermissionGroups: nil,
				AnyRecipient: []ExchangeACE{{User: "NT-AUTORITÄT\\ANONYMOUS-ANMELDUNG", SID: anonymousLogonSID}, {User: `MS Exchange\Externally Secured Servers`, Inherited: true}}},
			{Identity: `EX1\A`, Name: "A", Server: "EX1", Enabled: true, Bindings: []string{"0.0.0.0:2525"}, RemoteIPRanges: []string{"0.0.0.0-255.255.255.255"}},
		},
		Domains: []ExchangeAcceptedDomain{{Name: "z", DomainName: "*", DomainType: "InternalRelay"}, {Name: "a", DomainName: "a.example", DomainType: "Authoritative", Default: true}}}
	out := &psframe.Output{Records: encodeExchangeState(st)}
	got, err := decodeExchangeRead(out)
	if err != nil {
		t.Fatal(err)
	}
	want := *st
	want.Normalize()
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	// Before 2013 the role field is $null: the state is not role-aware.
	for i := range out.Records {
		for j := range out.Records[i].Fields {
			if out.Records[i].Fields[j].Name == "role" {
				out.Records[i].Fields[j] = psframe.Field{Name: "role", Null: true}
			}
		}
	}
	if got, err := decodeExchangeRead(out); err != nil || got.RoleAware {
		t.Errorf("null role: RoleAware %v err %v", got.RoleAware, err)
	}
	if _, err := decodeExchangeRead(&psframe.Output{}); err == nil {
		t.Error("empty output decoded")
	}
}

func TestCoveredBy(t *testing.T) {
	p := func(s string) AddrRange {
		r, err := ParseAddrRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	allow := []AddrRange{p("10.0.0.0/24"), p("10.0.1.0/24"), p("192.168.1.5"), p("2001:db8::/64")}
	tests := []struct {
		r    string
		want bool
	}{
		{"10.0.0.7", true},
		{"10.0.0.0-10.0.1.255", true}, // spans two adjacent allow entries
		{"10.0.0.0/23", true},
		{"10.0.0.0/22", false},
		{"192.168.1.5", true},
		{"192.168.1.4-192.168.1.5", false},
		{"0.0.0.0-255.255.255.255", false},
		{"2001:db8::1", true},
		{"::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	}
	for _, tc := range tests {
		if got := exCoveredBy(p(tc.r), allow); got != tc.want {
			t.Errorf("exCoveredBy(%s) = %v, want %v", tc.r, got, tc.want)
		}
	}
}

func TestParseExchangeIPRange(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.1": "10.0.0.1", "192.168.1.0(255.255.255.0)": "192.168.1.0/24",
		"192.168.1.77( 255.255.0.0 )": "192.168.0.0/16", "10.0.0.0-10.0.0.9": "10.0.0.0-10.0.0.9", "2001:db8::/32": "2001:db8::/32"} {
		r, err := parseExchangeIPRange(in)
		if err != nil || r.String() != want {
			t.Errorf("parseExchangeIPRange(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, in := range []string{"10.0.0.0(255.0.255.0)", "10.0.0.0(255.255.255.0", "2001:db8::(ffff::)", "x(255.0.0.0)", "10.0.0.1; x"} {
		if _, err := parseExchangeIPRange(in); !errors.Is(err, ErrAllowSyntax) {
			t.Errorf("parseExchangeIPRange(%q): err = %v, want ErrAllowSyntax", in, err)
		}
	}
}

func TestCanonRanges(t *testing.T) {
	got := exCanonRanges([]string{"::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "192.168.0.0-192.168.0.255", " 10.0.0.1 ", "0.0.0.0-255.255.255.255", "bogus", "10.0.0.1"})
	want := "0.0.0.0/0, 10.0.0.1, 192.168.0.0/24, ::/0, bogus"
	if got != want {
		t.Errorf("exCanonRanges = %q, want %q", got, want)
	}
	if exCanonRanges(nil) != "(none)" {
		t.Error("empty ranges")
	}
}

func TestIsBroadDomain(t *testing.T) {
	for d, want := range map[string]bool{"*": true, "*.com": true, "*.co.uk": true, "*.contoso.com": false, "contoso.com": false, "*.mail.contoso.com": false} {
		if got := exIsBroadDomain(d); got != want {
			t.Errorf("exIsBroadDomain(%q) = %v, want %v", d, got, want)
		}
	}
}

func TestEffectiveConnector(t *testing.T) {
	s := &ExchangeState{Connectors: []ExchangeConnector{
		{Identity: `EX1\Default Frontend EX1`, Enabled: true, Bindings: []string{"0.0.0.0:25"}, RemoteIPRanges: []string{"0.0.0.0-255.255.255.255"}},
		{Identity: `EX1\Relay`, Enabled: true, Bindings: []string{"0.0.0.0:25"}, RemoteIPRanges: []string{"10.0.0.0/8", "10.1.2.3"}},
		{Identity: `EX1\Specific`, Enabled: true, Bindings: []string{"192.0.2.25:25"}, RemoteIPRanges: []string{"0.0.0.0/0"}},
		{Identity: `EX1\Off`, Enabled: false, Bindings: []string{"0.0.0.0:25"}, RemoteIPRanges: []string{"10.1.2.0/24"}},
		{Identity: `EX1\Client`, Enabled: true, Bindings: []string{"0.0.0.0:587"}, RemoteIPRanges: []string{"10.1.2.3"}},
	}}
	for addr, want := range map[string]string{"10.1.2.3": `EX1\Relay`, "10.9.9.9": `EX1\Relay`, "203.0.113.1": `EX1\Specific`} {
		c := s.EffectiveConnector(netip.MustParseAddr(addr), 25)
		if c == nil || c.Identity != want {
			t.Errorf("EffectiveConnector(%s) = %v, want %s", addr, c, want)
		}
	}
	if c := s.EffectiveConnector(netip.MustParseAddr("2001:db8::1"), 25); c != nil {
		t.Errorf("IPv6 client matched %s", c.Identity)
	}
}

// FuzzExchangeOps: any values survive the trip through parameters as the
// script reads them: scalars verbatim, lists as trimmed non-empty lines.
func FuzzExchangeOps(f *testing.F) {
	f.Add("relaylock Relay", "10.0.0.1\n10.0.0.0/24", `EX1\App Relay`)
	f.Add(`Relay'; Remove-Item C:/; '`, "$(x)\r\n 1.2.3.4 ", "`n")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, name, ranges, identity string) {
		op := exchangeOp{Kind: opNewConnector, Name: name, Identity: identity, Ranges: strings.Split(ranges, "\n"), User: name}
		got, err := decodeExchangeOps(encodeExchangeOps([]exchangeOp{op}))
		if err != nil || len(got) != 1 {
			t.Fatalf("decode: %v %d", err, len(got))
		}
		if got[0].Name != name || got[0].Identity != identity || got[0].User != name {
			t.Errorf("scalars changed: %+v", got[0])
		}
		var want []string
		for _, x := range strings.Split(strings.Join(op.Ranges, "\n"), "\n") {
			if x = strings.TrimSpace(x); x != "" {
				want = append(want, x)
			}
		}
		if !reflect.DeepEqual(got[0].Ranges, want) {
			t.Errorf("ranges %q, want %q", got[0].Ranges, want)
		}
	})
}

// FuzzDecodeExchangeRead: host output is untrusted; whatever records a
// host prints, decoding, settings, findings and planning never panic, and
// a decoded state is deterministic.
func FuzzDecodeExchangeRead(f *testing.F) {
	f.Add("EX1\\App Relay", "0.0.0.0-255.255.255.255\n10.0.0.0/8", "Tls\nExternalAuthoritative", "AnonymousUsers", "S-1-5-7", "True", "*")
	f.Add("", "", "", "", "", "maybe", "")
	f.Add("X", "::-ffff::\n1.2.3.4-1.2.3.3", "None", "None", "", "False", "*.com")
	f.Fuzz(func(t *testing.T, id, ranges, auth, groups, sid, enabled, domain string) {
		recs := []psframe.Record{
			*psframe.NewRecord("exinfo").Set("server", "EX1").Set("anon_name", "NT AUTHORITY\\ANONYMOUS LOGON"),
			*psframe.NewRecord("connector").Set("id", id).Set("role", "FrontendTransport").Set("enabled", enabled).
				Set("bindings", "0.0.0.0:25\n"+id).Set("ranges", ranges).Set("auth", auth).Set("groups", groups),
			*psframe.NewRecord("ace").Set("id", id).Set("user", id).Set("sid", sid).Set("inherited", enabled),
			*psframe.NewRecord("domain").Set("name", domain).Set("domain", domain).Set("type", "InternalRelay").Set("default", "False"),
		}
		s, err := decodeExchangeRead(&psframe.Output{Records: recs})
		if err != nil {
			return
		}
		rows := ExchangeSettings(s)
		if !reflect.DeepEqual(rows, ExchangeSettings(s)) {
			t.Fatal("settings not deterministic")
		}
		_ = exchangeFindings(s, []netip.Addr{netip.MustParseAddr("203.0.113.9")})
		allow, _ := ParseAddrRange("10.1.2.0/24")
		st, _ := json.Marshal(s)
		_, _ = exchangeDriver{}.Plan(&Inspection{State: st}, Request{Allow: []AddrRange{allow}, FixDomains: true})
	})
}

// Exchange 2007's New-ReceiveConnector has the -Custom switch and no
// -Usage (documented for 2010+ only); -Custom exists in every later
// version, so exchange-write always creates connectors with it. Every
// Exchange cmdlet the scripts run gets the pinned -DomainController.
func TestExchangeWriteUsesCustomAndOneDC(t *testing.T) {
	scripts := exchangeScripts(t)
	w := scripts[ExchangeWriteScript]
	if !strings.Contains(w, "New-ReceiveConnector @a -Custom @rlDCArg") {
		t.Error("exchange-write does not create connectors with -Custom")
	}
	if regexp.MustCompile(`(?i)['-]Usage\b`).MatchString(w) {
		t.Error("exchange-write uses -Usage, which Exchange 2007 does not have")
	}
	cmdlet := regexp.MustCompile(`(?m)\b((?:Get|Set|New|Remove|Add)-(?:ReceiveConnector|ADPermission|AcceptedDomain|ExchangeServer))\b[^\n]*`)
	for n, s := range scripts {
		body := s[strings.Index(s, "# END exchange-loader"):]
		for _, m := range cmdlet.FindAllString(body, -1) {
			if !strings.Contains(m, "@rlDCArg") {
				t.Errorf("%s: %q runs without the pinned domain controller", n, m)
			}
		}
	}
}
