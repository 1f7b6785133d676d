package lab

import (
	"context"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

func TestExchangeRegistered(t *testing.T) {
	for name, version := range map[string]string{"exchange2016": "2016", "exchange2019": "2019", "exchange2010": "2010", "exchange2007": "2007"} {
		h, err := NewHost(name)
		if err != nil {
			t.Fatal(err)
		}
		if h.HostInfo().ExchangeVersion != version || h.HostInfo().Platform != remediate.PlatformExchange {
			t.Errorf("%s: HostInfo %+v", name, h.HostInfo())
		}
		if !h.RelayAllowed(netip.MustParseAddr("203.0.113.5"), false, "elsewhere.example") {
			t.Errorf("%s is not an open relay by default", name)
		}
		if got := h.LocalDomains(); !reflect.DeepEqual(got, []string{LabExchangeDomain}) {
			t.Errorf("%s: LocalDomains %q", name, got)
		}
	}
}

func TestExchangeRelayAllowed(t *testing.T) {
	internet := netip.MustParseAddr("203.0.113.5")
	tests := []struct {
		name  string
		host  func() *ExchangeHost
		auth  bool
		rcpt  string
		want  bool
		cause string
	}{
		{"closed: anonymous", Exchange2019Closed, false, "elsewhere.example", false, "Default Frontend has no relay right"},
		{"closed: authenticated", Exchange2019Closed, true, "elsewhere.example", true, "ExchangeUsers on Client Frontend"},
		{"open custom connector", Exchange2016OpenCustomConnector, false, "elsewhere.example", true, "anonymous ACE"},
		{"ExternalAuthoritative", Exchange2016ExternalAuthoritative, false, "elsewhere.example", true, "ExternalAuthoritative"},
		{"wildcard relay domain", Exchange2016WildcardAcceptedDomain, false, "elsewhere.example", true, "* InternalRelay"},
		{"relay domain: its own domain", Exchange2016InternalRelayDomain, false, "partner.example", true, "InternalRelay"},
		{"relay domain: other domain", Exchange2016InternalRelayDomain, false, "elsewhere.example", false, "only that domain"},
		{"German name", Exchange2016German, false, "elsewhere.example", true, "localized anonymous ACE"},
		{"2010 default", Exchange2010OpenDefault, false, "elsewhere.example", true, "anonymous ACE on Default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.host().RelayAllowed(internet, tc.auth, tc.rcpt); got != tc.want {
				t.Errorf("RelayAllowed = %v, want %v (%s)", got, tc.want, tc.cause)
			}
		})
	}
}

func exRunOps(t *testing.T, h *ExchangeHost, ops ...exOp) *remediate.ScriptRun {
	t.Helper()
	// A host prepared as the README asks (WinRM 2.0's quota raised), so
	// that the cmdlets' own checks answer.
	run, err := (&DirectRunner{Host: h, Conditions: PreparedConditions(h)}).Run(context.Background(), remediate.ExchangeWriteScript, exOpParams(ops))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func TestExchangeCmdletValidation(t *testing.T) {
	good := exOp{Kind: exOpNewConnector, Name: "Relay", Server: "EX1", Role: "FrontendTransport",
		Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"10.0.0.5"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}}
	with := func(f func(*exOp)) exOp { op := good; f(&op); return op }
	tests := []struct {
		name string
		host func() *ExchangeHost
		ops  []exOp
		err  string
		done int
	}{
		{"unknown connector", Exchange2019Closed, []exOp{{Kind: exOpSetConnector, Identity: `EX1\Nope`, Set: []string{"enabled"}}},
			`The operation couldn't be performed because object 'EX1\Nope' couldn't be found on 'DC1.corp.example'.`, 0},
		{"other server", Exchange2019Closed, []exOp{{Kind: exOpRemoveConnector, Identity: `EX2\Default Frontend EX1`}}, "couldn't be found", 0},
		{"duplicate name", Exchange2019Closed, []exOp{good, good}, `A Receive connector with the name "Relay" already exists`, 1},
		{"duplicate name, other case", Exchange2019Closed, []exOp{with(func(o *exOp) { o.Name = "default frontend ex1" })}, "already exists", 0},
		{"invalid range", Exchange2019Closed, []exOp{with(func(o *exOp) { o.Ranges = []string{"10.0.0.300"} })}, "isn't a valid IP range", 0},
		{"invalid binding", Exchange2019Closed, []exOp{with(func(o *exOp) { o.Bindings = []string{"0.0.0.0"} })}, "IPBinding", 0},
		{"invalid role", Exchange2019Closed, []exOp{with(func(o *exOp) { o.Role = "Edge" })}, "TransportRole", 0},
		{"no TransportRole on 2010", Exchange2010OpenDefault, []exOp{good}, "parameter name 'TransportRole'", 0},
		{"binding and range conflict", Exchange2019Closed, []exOp{with(func(o *exOp) { o.Ranges = []string{"0.0.0.0-255.255.255.255"} })},
			"conflict with the settings on Receive connector \"EX1\\Default Frontend EX1\"", 0},
		{"partly overlapping range on the same binding", Exchange2019Closed, []exOp{good,
			with(func(o *exOp) { o.Name = "Relay 2"; o.Ranges = []string{"10.0.0.0-10.0.0.5"} }),  // holds 10.0.0.5: allowed
			with(func(o *exOp) { o.Name = "Relay 3"; o.Ranges = []string{"10.0.0.3-10.0.0.9"} })}, // partly over Relay 2's
			"conflict with the settings on Receive connector \"EX1\\Relay 2\"", 2},
		{"unknown auth", Exchange2019Closed, []exOp{with(func(o *exOp) { o.Auth = []string{"Anonymous"} })}, "AuthMechanisms", 0},
		{"remove missing ACE", Exchange2019Closed, []exOp{{Kind: exOpRemoveACE, Identity: `EX1\Default Frontend EX1`, SID: sidAnonymousLogon}},
			"the ACE doesn't exist", 0},
		{"unknown principal", Exchange2019Closed, []exOp{{Kind: exOpAddACE, Identity: `EX1\Default Frontend EX1`, User: `CONTOSO\Nobody`}}, "couldn't be found", 0},
		{"remove default domain", Exchange2019Closed, []exOp{{Kind: exOpRemoveDomain, Identity: LabExchangeDomain}}, "default accepted domain", 0},
		{"bad domain type", Exchange2019Closed, []exOp{{Kind: exOpSetDomain, Identity: LabExchangeDomain, DomainType: "Open"}}, "DomainType", 0},
		{"unknown op", Exchange2019Closed, []exOp{{Kind: "format-c"}}, "unknown operation kind", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host()
			run := exRunOps(t, h, tc.ops...)
			if run.ExitCode == 0 || len(run.Errors) != 1 || !strings.Contains(run.Errors[0], tc.err) {
				t.Errorf("exit %d errors %q, want one error containing %q", run.ExitCode, run.Errors, tc.err)
			}
			if got := len(run.Output.Of("done")); got != tc.done {
				t.Errorf("%d operations done, want %d", got, tc.done)
			}
		})
	}
}

func TestExchangeWriteOps(t *testing.T) {
	h := Exchange2019Closed()
	run := exRunOps(t, h,
		exOp{Kind: exOpNewConnector, Name: "Relay", Server: "EX1", Role: "FrontendTransport",
			Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"10.0.0.5", "10.0.1.0/24"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}},
		exOp{Kind: exOpAddACE, Identity: `EX1\Relay`, User: "ignored: the SID decides", SID: sidAnonymousLogon},
		exOp{Kind: exOpNewDomain, Name: "partner", DomainName: "partner.example", DomainType: "ExternalRelay"},
	)
	if run.ExitCode != 0 || len(run.Output.Of("done")) != 3 {
		t.Fatalf("exit %d errors %q", run.ExitCode, run.Errors)
	}
	s := h.State()
	c := s.Connector(`EX1\Relay`)
	if c == nil || c.TransportRole != "FrontendTransport" || !c.HasAnonymousRelay(s.AnonymousName, true) ||
		!reflect.DeepEqual(c.RemoteIPRanges, []string{"10.0.0.5", "10.0.1.0/24"}) {
		t.Fatalf("connector = %+v", c)
	}
	if !h.RelayAllowed(netip.MustParseAddr("10.0.1.9"), false, "elsewhere.example") || h.RelayAllowed(netip.MustParseAddr("10.0.2.9"), false, "elsewhere.example") {
		t.Error("relay decision does not follow the new connector")
	}
	if !h.RelayAllowed(netip.MustParseAddr("10.0.2.9"), false, "partner.example") {
		t.Error("ExternalRelay domain not relayed")
	}
	run = exRunOps(t, h, exOp{Kind: exOpSetConnector, Identity: `EX1\Relay`, Set: []string{exFieldEnabled}, Enabled: false})
	if run.ExitCode != 0 || h.RelayAllowed(netip.MustParseAddr("10.0.1.9"), false, "elsewhere.example") {
		t.Error("disabling the connector did not stop relay")
	}
}

func TestExchangeReadFailsLikeTheLoader(t *testing.T) {
	h := Exchange2019Closed()
	h.SetLoadError("Exchange Management Shell could not be loaded: this is a 32-bit PowerShell process; run the 64-bit powershell.exe")
	run, err := (&DirectRunner{Host: h}).Run(context.Background(), remediate.ExchangeReadScript, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.ExitCode != 3 || len(run.Errors) != 1 || !strings.Contains(run.Errors[0], "32-bit") {
		t.Errorf("exit %d errors %q", run.ExitCode, run.Errors)
	}
}

// exOpParams writes exchange-write's parameters for ops as its header
// describes them (ops, op<i>_<field>, lists joined by newlines; enabled
// only for a set-connector that sets it). Empty values are left out.
func exOpParams(ops []exOp) map[string]string {
	p := map[string]string{"ops": strconv.Itoa(len(ops))}
	for i, op := range ops {
		pre := "op" + strconv.Itoa(i+1) + "_"
		for k, v := range map[string]string{
			"kind": op.Kind, "identity": op.Identity, "name": op.Name, "server": op.Server, "role": op.Role,
			"comment": op.Comment, "set": strings.Join(op.Set, "\n"), "bindings": strings.Join(op.Bindings, "\n"),
			"ranges": strings.Join(op.Ranges, "\n"), "auth": strings.Join(op.Auth, "\n"), "groups": strings.Join(op.Groups, "\n"),
			"user": op.User, "sid": op.SID, "domain": op.DomainName, "type": op.DomainType,
		} {
			if v != "" {
				p[pre+k] = v
			}
		}
		if op.Kind == exOpSetConnector && exContainsFold(op.Set, exFieldEnabled) {
			p[pre+"enabled"] = map[bool]string{true: "True", false: "False"}[op.Enabled]
		}
	}
	return p
}

// TestExchangeWriteParams: the lab reads exchange-write's parameters as
// the script does: a non-numeric ops count fails the run, a bad enabled
// value fails its own operation after the earlier ones ran, and list
// items are trimmed.
func TestExchangeWriteParams(t *testing.T) {
	run := func(p map[string]string) *remediate.ScriptRun {
		t.Helper()
		r, err := (&DirectRunner{Host: Exchange2019Closed()}).Run(context.Background(), remediate.ExchangeWriteScript, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := run(map[string]string{"ops": "two"}); r.ExitCode == 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], `"System.Int32"`) {
		t.Errorf("ops=two: exit %d, errors %q", r.ExitCode, r.Errors)
	}
	if r := run(map[string]string{"ops": ""}); r.ExitCode != 0 || len(r.Output.Of("done")) != 0 {
		t.Errorf("ops='': exit %d, errors %q", r.ExitCode, r.Errors)
	}
	r := run(map[string]string{"ops": "2",
		"op1_kind": exOpSetDomain, "op1_identity": LabExchangeDomain, "op1_type": "Authoritative",
		"op2_kind": exOpSetConnector, "op2_identity": `EX1\Default Frontend EX1`, "op2_set": " Enabled \n\n", "op2_enabled": "yes"})
	if r.ExitCode == 0 || len(r.Output.Of("done")) != 1 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "valid Boolean") {
		t.Errorf("bad enabled: exit %d, done %d, errors %q", r.ExitCode, len(r.Output.Of("done")), r.Errors)
	}
}
