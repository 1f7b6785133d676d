package remediate_test

// Driver tests against the lab's Exchange simulation through the real
// script framing (lab.DirectRunner): inspect, plan, apply, read back,
// re-plan, restore.

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

var (
	prober   = netip.MustParseAddr("203.0.113.9")
	stranger = netip.MustParseAddr("198.51.100.77")
	allowed  = netip.MustParseAddr("10.1.2.3")
)

func exDriver(t *testing.T) remediate.Driver {
	t.Helper()
	d, err := remediate.DriverFor(remediate.PlatformExchange)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func exInspect(t *testing.T, h *lab.ExchangeHost) *remediate.Inspection {
	t.Helper()
	// The host prepared as the README asks (a WinRM 2.0 host's shell
	// memory quota raised: lab.HostPreparation).
	insp, err := exDriver(t).Inspect(context.Background(), &lab.DirectRunner{Host: h, Conditions: lab.PreparedConditions(h)}, "ex1.corp.example", h.HostInfo(), []netip.Addr{prober})
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return insp
}

func exRequest(fixDomains bool) remediate.Request {
	r1, _ := remediate.ParseAddrRange("10.1.2.0/24")
	r2, _ := remediate.ParseAddrRange("192.168.7.10")
	return remediate.Request{Allow: []remediate.AddrRange{r1, r2}, AllowAuthenticated: true, FixDomains: fixDomains}
}

func findingsByID(insp *remediate.Inspection, id string) []remediate.Finding {
	var out []remediate.Finding
	for _, f := range insp.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func TestExchangeFindings(t *testing.T) {
	tests := []struct {
		name     string
		host     func() *lab.ExchangeHost
		id       string
		object   string
		severity remediate.Severity
		explains bool
		value    string // substring of Finding.Value
	}{
		{"2016 open custom connector", lab.Exchange2016OpenCustomConnector, remediate.FindExchAnonRelay, `Receive connector EX1\App Relay`, remediate.SeverityHigh, true, "[S-1-5-7]"},
		{"2016 ExternalAuthoritative", lab.Exchange2016ExternalAuthoritative, remediate.FindExchExternalAuth, `Receive connector EX1\Partner Relay`, remediate.SeverityHigh, true, "ExternalAuthoritative"},
		{"2016 wildcard accepted domain", lab.Exchange2016WildcardAcceptedDomain, remediate.FindExchWildcardDomain, "Accepted domain All Domains", remediate.SeverityHigh, true, "*"},
		{"2016 internal relay domain", lab.Exchange2016InternalRelayDomain, remediate.FindExchRelayDomain, "Accepted domain partner.example", remediate.SeverityMedium, false, "InternalRelay"},
		{"2016 German anonymous name", lab.Exchange2016German, remediate.FindExchAnonRelay, `Receive connector EX1\App Relay`, remediate.SeverityHigh, true, "NT-AUTORITÄT\\ANONYMOUS-ANMELDUNG [S-1-5-7]"},
		{"2016 inherited anonymous right", lab.Exchange2016InheritedAnonymous, remediate.FindExchAnonRelay, `Receive connector EX1\App Relay`, remediate.SeverityHigh, true, "(inherited)"},
		{"2019 anonymous right on Default Frontend", lab.Exchange2019AnonDefaultFrontend, remediate.FindExchAnonRelay, `Receive connector EX1\Default Frontend EX1`, remediate.SeverityHigh, true, "ANONYMOUS LOGON"},
		{"2019 closed: prober lands on Default Frontend", lab.Exchange2019Closed, remediate.FindExchProberConnector, `Receive connector EX1\Default Frontend EX1`, remediate.SeverityInfo, false, "0.0.0.0/0"},
		{"2010 anonymous right on Default", lab.Exchange2010OpenDefault, remediate.FindExchAnonRelay, `Receive connector EX1\Default EX1`, remediate.SeverityHigh, true, "[S-1-5-7]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			insp := exInspect(t, tc.host())
			fs := findingsByID(insp, tc.id)
			if len(fs) != 1 {
				t.Fatalf("want one %s finding, got %d: %+v", tc.id, len(fs), insp.Findings)
			}
			f := fs[0]
			if f.Object != tc.object || f.Severity != tc.severity || f.Explains != tc.explains || !strings.Contains(f.Value, tc.value) {
				t.Errorf("finding = %+v\nwant object %q severity %s explains %v value ~%q", f, tc.object, tc.severity, tc.explains, tc.value)
			}
			if f.Title == "" || f.Detail == "" {
				t.Errorf("finding without title or detail: %+v", f)
			}
		})
	}
}

func TestExchangeClosedHasNoHighFinding(t *testing.T) {
	for name, h := range map[string]func() *lab.ExchangeHost{"2019": lab.Exchange2019Closed, "SE": lab.ExchangeSEClosed, "2016": lab.Exchange2016Default} {
		t.Run(name, func(t *testing.T) {
			insp := exInspect(t, h())
			for _, f := range insp.Findings {
				if f.Severity == remediate.SeverityHigh || f.Explains {
					t.Errorf("closed host has finding %+v", f)
				}
			}
			if h().RelayAllowed(prober, false, "elsewhere.example") {
				t.Error("lab: closed host relays for the prober")
			}
		})
	}
}

// settingsMap indexes Setting rows by object and name.
func settingsMap(rows []remediate.Setting) map[[2]string]string {
	m := map[[2]string]string{}
	for _, r := range rows {
		m[[2]string{r.Object, r.Name}] = r.Value
	}
	return m
}

func TestExchangeRemediateCycle(t *testing.T) {
	tests := []struct {
		name       string
		host       func() *lab.ExchangeHost
		fixDomains bool
		connector  string // ConnectorName
	}{
		{"2016 open custom connector", lab.Exchange2016OpenCustomConnector, false, ""},
		{"2016 inherited server ACEs", lab.Exchange2016InheritedServerACEs, false, ""},
		{"2016 ExternalAuthoritative", lab.Exchange2016ExternalAuthoritative, false, ""},
		{"2016 wildcard domain with fix-domains", lab.Exchange2016WildcardAcceptedDomain, true, ""},
		{"2016 German", lab.Exchange2016German, false, "Relais"},
		{"2019 Default Frontend", lab.Exchange2019AnonDefaultFrontend, false, ""},
		{"2010 Default", lab.Exchange2010OpenDefault, false, ""},
		{"2007 Default", lab.Exchange2007OpenDefault, false, ""},
	}
	ctx := context.Background()
	d := exDriver(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host()
			run := &lab.DirectRunner{Host: h, Conditions: lab.PreparedConditions(h)}
			before := h.State()
			if !h.RelayAllowed(stranger, false, "elsewhere.example") {
				t.Fatal("scenario is not an open relay to begin with")
			}
			insp := exInspect(t, h)
			req := exRequest(tc.fixDomains)
			req.ConnectorName = tc.connector
			plan, err := d.Plan(insp, req)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			name := tc.connector
			if name == "" {
				name = remediate.DefaultRelayConnectorName
			}
			relayObj := `Receive connector EX1\` + name
			if !reflect.DeepEqual(plan.Created, []string{relayObj}) {
				t.Errorf("Created = %q, want [%q]", plan.Created, relayObj)
			}
			for _, c := range plan.Changes {
				if c.Why == "" || c.Current == c.New {
					t.Errorf("change without reason or effect: %+v", c)
				}
				if c.Object != relayObj && (c.Setting == remediate.SetRemoteIPRanges || c.Setting == remediate.SetBindings) {
					t.Errorf("plan narrows or rebinds an existing connector: %+v", c)
				}
				if c.Object == relayObj && c.Setting == remediate.SetRemoteIPRanges && c.New != "10.1.2.0/24, 192.168.7.10" {
					t.Errorf("dedicated connector ranges = %q", c.New)
				}
			}
			applied, err := d.Apply(ctx, run, plan)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if len(applied) != len(plan.Changes) {
				t.Errorf("applied %d of %d changes", len(applied), len(plan.Changes))
			}

			// Read-back as the integrator does it.
			after := exInspect(t, h)
			rows := settingsMap(after.Settings)
			for _, c := range plan.Changes {
				got, ok := rows[[2]string{c.Object, c.Setting}]
				switch {
				case c.New == remediate.ValueAbsent && ok:
					t.Errorf("read-back %s %s: still %q, want absent", c.Object, c.Setting, got)
				case c.New != remediate.ValueAbsent && got != c.New:
					t.Errorf("read-back %s %s = %q, want %q", c.Object, c.Setting, got, c.New)
				}
			}
			if h.RelayAllowed(stranger, false, "elsewhere.example") || h.RelayAllowed(prober, false, "elsewhere.example") {
				t.Error("still an open relay after apply")
			}
			if !h.RelayAllowed(allowed, false, "elsewhere.example") || !h.RelayAllowed(netip.MustParseAddr("192.168.7.10"), false, "elsewhere.example") {
				t.Error("allowed client cannot relay after apply")
			}
			if !h.RelayAllowed(stranger, true, "elsewhere.example") {
				t.Error("authenticated client cannot relay after apply")
			}
			for _, f := range after.Findings {
				if f.Explains {
					t.Errorf("after apply a finding still explains the probe: %+v", f)
				}
			}

			// Idempotent.
			again, err := d.Plan(after, req)
			if err != nil {
				t.Fatalf("second plan: %v", err)
			}
			if len(again.Changes) != 0 || len(again.Created) != 0 {
				t.Errorf("second plan is not empty: %+v", again.Changes)
			}

			// Restore puts back exactly the old state.
			b := &remediate.Backup{Schema: remediate.BackupSchema, Host: insp.Host, Platform: remediate.PlatformExchange,
				Taken: time.Now(), Inspection: insp, Plan: plan}
			if err := d.Restore(ctx, run, b); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := h.State(); !reflect.DeepEqual(got, before) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(before, "", " ")
				t.Errorf("state after restore differs:\n%s\nwant\n%s", g, w)
			}
			if !h.RelayAllowed(stranger, false, "elsewhere.example") {
				t.Error("restore did not bring back the old (open) behaviour")
			}
			writes := len(h.Writes())
			if err := d.Restore(ctx, run, b); err != nil {
				t.Fatalf("second restore: %v", err)
			}
			if len(h.Writes()) != writes {
				t.Error("second restore wrote to the host")
			}
		})
	}
}

func TestExchangePlanDefaultFrontendKeepsRanges(t *testing.T) {
	insp := exInspect(t, lab.Exchange2019AnonDefaultFrontend())
	plan, err := exDriver(t).Plan(insp, exRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	var touched []remediate.Change
	for _, c := range plan.Changes {
		if c.Object == `Receive connector EX1\Default Frontend EX1` {
			touched = append(touched, c)
		}
	}
	if len(touched) != 1 || touched[0].Setting != remediate.SetAnyRecipient || strings.Contains(touched[0].New, "S-1-5-7") ||
		!strings.Contains(touched[0].Current, "S-1-5-7") {
		t.Fatalf("Default Frontend changes = %+v, want only the anonymous ACE removed", touched)
	}
	if !strings.Contains(touched[0].Why, "Internet") {
		t.Errorf("why does not say the connector receives Internet mail: %q", touched[0].Why)
	}
}

func TestExchangePlanNotes(t *testing.T) {
	t.Run("inherited right is reported, not changed", func(t *testing.T) {
		plan, err := exDriver(t).Plan(exInspect(t, lab.Exchange2016InheritedAnonymous()), exRequest(false))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range plan.Changes {
			if strings.Contains(c.Object, "App Relay") {
				t.Errorf("plan changes the connector with an inherited right: %+v", c)
			}
		}
		if !anyContains(plan.Notes, "inherits") {
			t.Errorf("notes do not mention the inherited right: %q", plan.Notes)
		}
	})
	t.Run("relay domains only with fix-domains", func(t *testing.T) {
		for _, h := range []func() *lab.ExchangeHost{lab.Exchange2016WildcardAcceptedDomain, lab.Exchange2016InternalRelayDomain} {
			plan, err := exDriver(t).Plan(exInspect(t, h()), exRequest(false))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range plan.Changes {
				if strings.HasPrefix(c.Object, "Accepted domain") {
					t.Errorf("domain changed without FixDomains: %+v", c)
				}
			}
			if !anyContains(plan.Notes, "Accepted domain") {
				t.Errorf("notes do not mention the domain: %q", plan.Notes)
			}
		}
		plan, err := exDriver(t).Plan(exInspect(t, lab.Exchange2016InternalRelayDomain()), exRequest(true))
		if err != nil {
			t.Fatal(err)
		}
		var got []remediate.Change
		for _, c := range plan.Changes {
			if strings.HasPrefix(c.Object, "Accepted domain") {
				got = append(got, c)
			}
		}
		if len(got) != 1 || got[0].New != "Authoritative" || got[0].Current != "InternalRelay" {
			t.Errorf("fix-domains changes = %+v", got)
		}
	})
	t.Run("authenticated relay is kept and explained", func(t *testing.T) {
		req := exRequest(false)
		req.AllowAuthenticated = false
		plan, err := exDriver(t).Plan(exInspect(t, lab.Exchange2016OpenCustomConnector()), req)
		if err != nil {
			t.Fatal(err)
		}
		if !anyContains(plan.Notes, "ExchangeUsers") {
			t.Errorf("notes do not explain authenticated relay: %q", plan.Notes)
		}
		for _, c := range plan.Changes {
			if c.Setting == remediate.SetPermissionGroups && !strings.Contains(c.Object, remediate.DefaultRelayConnectorName) {
				t.Errorf("plan changes permission groups of an existing connector: %+v", c)
			}
		}
	})
	t.Run("closed host only gets the dedicated connector", func(t *testing.T) {
		plan, err := exDriver(t).Plan(exInspect(t, lab.Exchange2019Closed()), exRequest(false))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range plan.Changes {
			if !strings.Contains(c.Object, remediate.DefaultRelayConnectorName) {
				t.Errorf("closed host: unexpected change %+v", c)
			}
		}
	})
}

func anyContains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// Operator input travels only as data: a connector name full of
// PowerShell syntax reaches the host verbatim and becomes the name.
func TestExchangeInjectionNames(t *testing.T) {
	names := []string{
		`Relay'; Remove-Item C:/ -Recurse; '`,
		`Relay $(Stop-Service MSExchangeTransport)`,
		"Relay `$env:PATH ` \"quoted\" ; & exit 1",
		`Relay @{a=1} | Out-Null # comment`,
	}
	ctx := context.Background()
	d := exDriver(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			h := lab.Exchange2016OpenCustomConnector()
			req := exRequest(false)
			req.ConnectorName = name
			plan, err := d.Plan(exInspect(t, h), req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Apply(ctx, &lab.DirectRunner{Host: h}, plan); err != nil {
				t.Fatal(err)
			}
			w := h.Writes()
			if len(w) != 1 || w[0]["op1_name"] != name || w[0]["op2_identity"] != `EX1\`+name {
				t.Fatalf("host received %q, want the name verbatim", w)
			}
			if h.State().Connector(`EX1\`+name) == nil {
				t.Error("connector with the literal name not created")
			}
		})
	}
	for _, bad := range []string{"Relay\nNew-ReceiveConnector", "Relay\r", `EX2\Relay`, "", " padded", strings.Repeat("x", 65)} {
		req := exRequest(false)
		req.ConnectorName = bad
		if bad == "" {
			continue // empty means the default name
		}
		if _, err := d.Plan(exInspect(t, lab.Exchange2019Closed()), req); !errors.Is(err, remediate.ErrConnectorName) {
			t.Errorf("Plan with connector name %q: err = %v, want ErrConnectorName", bad, err)
		}
	}
}

// Ranges that are not IP ranges (here: PowerShell payloads) are refused
// by the host's cmdlet validation with a clean error, and nothing changes.
func TestExchangeInjectionRanges(t *testing.T) {
	for _, bad := range []string{
		`10.0.0.1'; Remove-Item C:\; '`,
		`$(Stop-Service MSExchangeTransport)`,
		"10.0.0.1 ; 10.0.0.2",
		"10.0.0.1`n10.0.0.2",
		"10.0.0.0/33",
	} {
		t.Run(bad, func(t *testing.T) {
			h := lab.Exchange2019Closed()
			before := h.State()
			ops := []remediate.ExchangeOp{{Kind: remediate.OpSetConnector, Identity: `EX1\Client Frontend EX1`,
				Set: []string{remediate.FieldRanges}, Ranges: []string{"10.9.9.9", bad}}}
			run, err := (&lab.DirectRunner{Host: h}).Run(context.Background(), remediate.ExchangeWriteScript, remediate.EncodeExchangeOps(ops))
			if err != nil {
				t.Fatal(err)
			}
			if run.ExitCode == 0 || len(run.Errors) != 1 || !strings.Contains(run.Errors[0], "isn't a valid IP range") || !strings.Contains(run.Errors[0], bad) {
				t.Errorf("exit %d errors %q: want a refusal naming %q", run.ExitCode, run.Errors, bad)
			}
			if w := h.Writes(); len(w) != 1 || w[0]["op1_ranges"] != "10.9.9.9\n"+bad {
				t.Errorf("host received %q", w)
			}
			if !reflect.DeepEqual(h.State(), before) {
				t.Error("state changed after a refused operation")
			}
		})
	}
}

func TestExchangeApplyStopsAtFirstFailure(t *testing.T) {
	h := lab.Exchange2016OpenCustomConnector()
	d := exDriver(t)
	plan, err := d.Plan(exInspect(t, h), exRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	// Someone removes the open connector between plan and apply: the
	// dedicated connector is created, the ACE removal fails.
	run := &lab.DirectRunner{Host: h}
	if _, err := run.Run(context.Background(), remediate.ExchangeWriteScript, remediate.EncodeExchangeOps([]remediate.ExchangeOp{{Kind: remediate.OpRemoveConnector, Identity: `EX1\App Relay`}})); err != nil {
		t.Fatal(err)
	}
	applied, err := d.Apply(context.Background(), run, plan)
	if !errors.Is(err, remediate.ErrExchangeWrite) || !strings.Contains(err.Error(), "couldn't be found") {
		t.Fatalf("apply err = %v", err)
	}
	for _, c := range applied {
		if !strings.Contains(c.Object, remediate.DefaultRelayConnectorName) {
			t.Errorf("reported as applied but failed: %+v", c)
		}
	}
	if len(applied) == 0 {
		t.Error("the dedicated connector was created but not reported as applied")
	}
}

func TestExchangeLoadFailure(t *testing.T) {
	h := lab.Exchange2016OpenCustomConnector()
	msg := "Exchange Management Shell could not be loaded: Connecting to remote server ex1.corp.example failed: Access is denied. (this looks like the WinRM second-hop problem: ...)"
	h.SetLoadError(msg)
	_, err := exDriver(t).Inspect(context.Background(), &lab.DirectRunner{Host: h}, "ex1", h.HostInfo(), nil)
	if err == nil || !strings.Contains(err.Error(), "second-hop") {
		t.Fatalf("inspect err = %v, want the loader's message", err)
	}
}

func TestExchangeDetectMatchesLab(t *testing.T) {
	tests := []struct {
		host    func() *lab.ExchangeHost
		version string
	}{
		{lab.Exchange2007OpenDefault, "2007"},
		{lab.Exchange2010OpenDefault, "2010"},
		{lab.Exchange2016OpenCustomConnector, "2016"},
		{lab.Exchange2019Closed, "2019"},
		{lab.ExchangeSEClosed, "SE"},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			h := tc.host()
			info, _, err := remediate.Detect(context.Background(), &lab.DirectRunner{Host: h})
			if err != nil {
				t.Fatal(err)
			}
			if info.Platform != remediate.PlatformExchange || info.ExchangeVersion != tc.version {
				t.Errorf("detect: platform %s version %s, want exchange %s", info.Platform, info.ExchangeVersion, tc.version)
			}
			want := h.HostInfo()
			if !reflect.DeepEqual(info, want) {
				t.Errorf("detect = %+v\nlab HostInfo = %+v", info, want)
			}
		})
	}
}

func exWrite(t *testing.T, h *lab.ExchangeHost, ops ...remediate.ExchangeOp) {
	t.Helper()
	run, err := (&lab.DirectRunner{Host: h}).Run(context.Background(), remediate.ExchangeWriteScript, remediate.EncodeExchangeOps(ops))
	if err != nil || run.ExitCode != 0 {
		t.Fatalf("setup write: %v %q", err, run.Errors)
	}
}

// An existing connector with the dedicated name is adjusted, not
// recreated, and restore puts its old values back.
func TestExchangeExistingDedicatedConnector(t *testing.T) {
	ctx := context.Background()
	d := exDriver(t)
	h := lab.Exchange2016OpenCustomConnector()
	exWrite(t, h, remediate.ExchangeOp{Kind: remediate.OpNewConnector, Name: remediate.DefaultRelayConnectorName, Server: "EX1",
		Role: "FrontendTransport", Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"172.16.0.0/12"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}})
	before := h.State()
	insp := exInspect(t, h)
	plan, err := d.Plan(insp, exRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Created) != 0 {
		t.Errorf("Created = %q for an existing connector", plan.Created)
	}
	obj := `Receive connector EX1\` + remediate.DefaultRelayConnectorName
	got := map[string]remediate.Change{}
	for _, c := range plan.Changes {
		if c.Object == obj {
			got[c.Setting] = c
		}
	}
	if c := got[remediate.SetRemoteIPRanges]; c.Current != "172.16.0.0/12" || c.New != "10.1.2.0/24, 192.168.7.10" {
		t.Errorf("ranges change = %+v", c)
	}
	// Microsoft's documented form, 0.0.0.0:25, which the connector has:
	// no bindings change, and the plan names App Relay's specific binding
	// as the unverified case.
	if c, ok := got[remediate.SetBindings]; ok {
		t.Errorf("bindings change = %+v, want none (0.0.0.0:25 already)", c)
	}
	if !strings.Contains(strings.Join(plan.Notes, "\n"), `EX1\App Relay listens on 192.0.2.25:25`) {
		t.Errorf("the plan does not name App Relay's specific binding: %q", plan.Notes)
	}
	if c, ok := got[remediate.SetAnyRecipient]; !ok || !strings.Contains(c.New, "S-1-5-7") {
		t.Errorf("ACE change = %+v", c)
	}
	if _, err := d.Apply(ctx, &lab.DirectRunner{Host: h}, plan); err != nil {
		t.Fatal(err)
	}
	if again, err := d.Plan(exInspect(t, h), exRequest(false)); err != nil || len(again.Changes) != 0 {
		t.Errorf("second plan: %v %+v", err, again)
	}
	if err := d.Restore(ctx, &lab.DirectRunner{Host: h}, &remediate.Backup{Inspection: insp, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.State(), before) {
		t.Error("restore did not put the existing connector back as it was")
	}
}

// Exchange refuses a connector whose binding and remote range another
// connector has, or whose range overlaps another's on the same binding
// without one holding the other; the plan refuses before touching the
// host, and the lab's New-ReceiveConnector refuses as Exchange does.
func TestExchangePlanRefusesDuplicateRange(t *testing.T) {
	for _, tc := range []struct {
		name, ranges string
		refused      bool
		says         string
	}{
		{"same range", "10.1.2.0/24", true, "is already the RemoteIPRanges entry"},
		{"partly overlapping", "10.1.2.128-10.1.3.10", true, "without either holding the other"},
		{"holding the allow entry", "10.0.0.0/8", false, ""},
		{"held by the allow entry", "10.1.2.64/26", false, ""},
		{"disjoint", "10.9.0.0/16", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := lab.Exchange2019Closed()
			exWrite(t, h, remediate.ExchangeOp{Kind: remediate.OpNewConnector, Name: "Scanners", Server: "EX1",
				Role: "FrontendTransport", Bindings: []string{"0.0.0.0:25"}, Ranges: []string{tc.ranges}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}})
			plan, err := exDriver(t).Plan(exInspect(t, h), exRequest(false))
			if !tc.refused {
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				// Exchange (the lab) takes the documented form next to it.
				if _, err := exDriver(t).Apply(context.Background(), &lab.DirectRunner{Host: h}, plan); err != nil {
					t.Fatalf("apply: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `EX1\Scanners`) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want a refusal naming the conflicting connector (%q)", err, tc.says)
			}
			// What Exchange itself answers to the same connector.
			run, _ := (&lab.DirectRunner{Host: h}).Run(context.Background(), remediate.ExchangeWriteScript, remediate.EncodeExchangeOps([]remediate.ExchangeOp{{
				Kind: remediate.OpNewConnector, Name: remediate.DefaultRelayConnectorName, Server: "EX1", Role: "FrontendTransport",
				Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"10.1.2.0/24", "192.168.7.10"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}}}))
			if run == nil || run.ExitCode == 0 || !strings.Contains(strings.Join(run.Errors, " "), `conflict with the settings on Receive connector "EX1\Scanners"`) {
				t.Errorf("New-ReceiveConnector on the lab: %+v", run)
			}
		})
	}
}

// The dedicated relay connector is created in Microsoft's documented form,
// -Bindings 0.0.0.0:25 (and [::]:25 for IPv6 clients) -RemoteIPRanges
// <allowed>, never with another connector's specific address; Exchange
// (the lab) takes it, and a second plan finds nothing to change.
func TestExchangeRelayConnectorBindings(t *testing.T) {
	for _, tc := range []struct {
		allow    []string
		bindings string
	}{
		{[]string{"10.1.2.0/24", "192.168.7.10"}, "0.0.0.0:25"},
		{[]string{"10.1.2.0/24", "2001:db8:7::/64"}, "0.0.0.0:25, [::]:25"},
	} {
		h := lab.Exchange2016OpenCustomConnector() // App Relay listens on 192.0.2.25:25
		req := exRequest(false)
		req.Allow = nil
		for _, a := range tc.allow {
			req.Allow = append(req.Allow, mustRange(t, a))
		}
		plan, err := exDriver(t).Plan(exInspect(t, h), req)
		if err != nil {
			t.Fatal(err)
		}
		obj := `Receive connector EX1\` + remediate.DefaultRelayConnectorName
		found := false
		for _, c := range plan.Changes {
			if c.Object == obj && c.Setting == remediate.SetBindings {
				found = true
				if c.New != tc.bindings {
					t.Errorf("%v: new connector's bindings %q, want %q", tc.allow, c.New, tc.bindings)
				}
			}
		}
		if !found {
			t.Fatalf("%v: no bindings row for the new connector: %+v", tc.allow, plan.Changes)
		}
		if !strings.Contains(strings.Join(plan.Notes, "\n"), "exchange-binding-precedence") {
			t.Errorf("%v: the plan does not name the unverified precedence: %q", tc.allow, plan.Notes)
		}
		if _, err := exDriver(t).Apply(context.Background(), &lab.DirectRunner{Host: h}, plan); err != nil {
			t.Fatalf("%v: apply: %v", tc.allow, err)
		}
		if again, err := exDriver(t).Plan(exInspect(t, h), req); err != nil || len(again.Changes) != 0 {
			t.Errorf("%v: second plan: %v %+v", tc.allow, err, again)
		}
	}
}

func TestExchangeSeverityByExposure(t *testing.T) {
	h := lab.Exchange2019Closed()
	exWrite(t, h,
		remediate.ExchangeOp{Kind: remediate.OpNewConnector, Name: "Partner host", Server: "EX1", Role: "FrontendTransport",
			Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"198.51.100.10"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}},
		remediate.ExchangeOp{Kind: remediate.OpAddACE, Identity: `EX1\Partner host`, SID: remediate.AnonymousLogonSID},
		remediate.ExchangeOp{Kind: remediate.OpNewConnector, Name: "Printers", Server: "EX1", Role: "FrontendTransport",
			Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"192.168.50.0/24"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}},
		remediate.ExchangeOp{Kind: remediate.OpAddACE, Identity: `EX1\Printers`, SID: remediate.AnonymousLogonSID},
		remediate.ExchangeOp{Kind: remediate.OpNewConnector, Name: "Internal anon", Server: "EX1", Role: "FrontendTransport",
			Bindings: []string{"0.0.0.0:25"}, Ranges: []string{"10.20.0.0/16"}, Auth: []string{"Tls"}, Groups: []string{"AnonymousUsers"}},
	)
	want := map[string]struct {
		id  string
		sev remediate.Severity
	}{
		`Receive connector EX1\Partner host`:  {remediate.FindExchAnonRelay, remediate.SeverityMedium},
		`Receive connector EX1\Printers`:      {remediate.FindExchAnonRelay, remediate.SeverityLow},
		`Receive connector EX1\Internal anon`: {remediate.FindExchAnonInternal, remediate.SeverityLow},
	}
	insp := exInspect(t, h)
	for obj, w := range want {
		found := false
		for _, f := range insp.Findings {
			if f.Object == obj && f.ID == w.id {
				found = true
				if f.Severity != w.sev || f.Explains {
					t.Errorf("%s: %+v, want severity %s, not explaining", obj, f, w.sev)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %s finding", obj, w.id)
		}
	}
	// The partner host is outside the allow list: its relay right goes; the
	// printers' network is inside a wider allow entry: left alone.
	req := exRequest(false)
	wide, _ := remediate.ParseAddrRange("192.168.0.0/16")
	req.Allow = append(req.Allow, wide)
	plan, err := exDriver(t).Plan(insp, req)
	if err != nil {
		t.Fatal(err)
	}
	var objs []string
	for _, c := range plan.Changes {
		if !strings.Contains(c.Object, remediate.DefaultRelayConnectorName) {
			objs = append(objs, c.Object+" "+c.Setting)
		}
	}
	if !reflect.DeepEqual(objs, []string{`Receive connector EX1\Partner host Accept-Any-Recipient`}) {
		t.Errorf("changes outside the dedicated connector: %q", objs)
	}
	if !anyContains(plan.Notes, `EX1\Printers relays for 192.168.50.0/24 only`) {
		t.Errorf("notes: %q", plan.Notes)
	}
}

func TestExchangeExternalAuthoritativeNote(t *testing.T) {
	plan, err := exDriver(t).Plan(exInspect(t, lab.Exchange2016ExternalAuthoritative()), exRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	if !anyContains(plan.Notes, `EX1\Partner Relay will no longer treat its clients as Exchange servers`) {
		t.Errorf("notes: %q", plan.Notes)
	}
}

// lostResult runs the script on the host, then reports a dropped
// connection: the change happened but the caller never saw the result.
type lostResult struct{ r remediate.Runner }

func (l lostResult) Run(ctx context.Context, script string, params map[string]string) (*remediate.ScriptRun, error) {
	run, err := l.r.Run(ctx, script, params)
	if err != nil || script != remediate.ExchangeWriteScript {
		return run, err
	}
	return &remediate.ScriptRun{Script: script}, errors.New("connection reset after the command ran")
}

// Restore works from the host's real state, so it also repairs a change
// whose result was lost (Apply reports nothing applied).
func TestExchangeRestoreAfterLostResult(t *testing.T) {
	ctx := context.Background()
	d := exDriver(t)
	h := lab.Exchange2016WildcardAcceptedDomain()
	exWrite(t, h, remediate.ExchangeOp{Kind: remediate.OpAddACE, Identity: `EX1\Default Frontend EX1`, SID: remediate.AnonymousLogonSID})
	before := h.State()
	insp := exInspect(t, h)
	plan, err := d.Plan(insp, exRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	applied, err := d.Apply(ctx, lostResult{&lab.DirectRunner{Host: h}}, plan)
	if err == nil || len(applied) != 0 {
		t.Fatalf("apply: %v, %d applied; want an error and nothing reported", err, len(applied))
	}
	if reflect.DeepEqual(h.State(), before) {
		t.Fatal("the change did not reach the host")
	}
	if err := d.Restore(ctx, &lab.DirectRunner{Host: h}, &remediate.Backup{Inspection: insp, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.State(), before) {
		t.Error("restore after a lost result did not bring back the old state")
	}
}
