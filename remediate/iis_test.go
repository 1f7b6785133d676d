package remediate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

var (
	iisLoopback = netip.MustParseAddr("127.0.0.1")
	iisStranger = netip.MustParseAddr("198.51.100.7")
	iisOffice   = netip.MustParseAddr("192.0.2.10")
)

func iisRange(t *testing.T, s string) remediate.AddrRange {
	t.Helper()
	r, err := remediate.ParseAddrRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func iisFindingIDs(fs []remediate.Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

func iisFinding(fs []remediate.Finding, id string) (remediate.Finding, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return remediate.Finding{}, false
}

func iisHasHigh(fs []remediate.Finding) bool {
	for _, f := range fs {
		if f.Severity == remediate.SeverityHigh {
			return true
		}
	}
	return false
}

func iisSetting(rows []remediate.Setting, object, name string) (string, bool) {
	for _, s := range rows {
		if s.Object == object && s.Name == name {
			return s.Value, true
		}
	}
	return "", false
}

func inspectIIS(t *testing.T, h lab.Host, prober ...netip.Addr) *remediate.Inspection {
	t.Helper()
	d, err := remediate.DriverFor(remediate.PlatformIIS)
	if err != nil {
		t.Fatal(err)
	}
	insp, err := d.Inspect(context.Background(), &lab.DirectRunner{Host: h}, "smtp01", h.HostInfo(), prober)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return insp
}

func TestIISInspectFindings(t *testing.T) {
	tests := []struct {
		scenario lab.IISScenario
		prober   netip.Addr
		id       string // expected finding ("" = no high finding)
		explains bool
	}{
		{lab.IISAllExceptEmpty, iisLoopback, "IIS-RELAY-ALL-EXCEPT-EMPTY", true},
		{lab.IISGrantEveryone, iisStranger, "IIS-RELAY-GRANT-EVERYONE", true},
		{lab.IISDenyList, iisStranger, "IIS-RELAY-DENY-LIST", true},
		{lab.IISDenyList, netip.MustParseAddr("192.0.2.66"), "IIS-RELAY-DENY-LIST", false},
		{lab.IISClosed, iisLoopback, "IIS-RELAY-GRANT-PROBER", true},
		{lab.IISClosed, iisStranger, "", false},
		{lab.IISUnset, iisStranger, "", false},
		{lab.IISRemoteDomainWildcard, iisStranger, "IIS-RELAY-DOMAIN-WILDCARD", true},
		{lab.IISAuthGuest, iisStranger, "IIS-RELAY-AUTH-GUEST", false},
		{lab.IISInheritedOpen, iisStranger, "IIS-RELAY-ALL-EXCEPT-EMPTY", true},
	}
	for _, tt := range tests {
		t.Run(tt.id+"/"+tt.prober.String(), func(t *testing.T) {
			insp := inspectIIS(t, lab.NewIIS(tt.scenario), tt.prober)
			if insp.Platform != remediate.PlatformIIS || len(insp.Runs) != 1 || insp.Runs[0].Script != "iis-read" {
				t.Fatalf("platform %s runs %d", insp.Platform, len(insp.Runs))
			}
			if tt.id == "" {
				if iisHasHigh(insp.Findings) {
					t.Fatalf("unexpected high finding: %v", iisFindingIDs(insp.Findings))
				}
				if _, ok := iisFinding(insp.Findings, "IIS-RELAY-RESTRICTED"); !ok {
					t.Fatalf("no info finding: %v", iisFindingIDs(insp.Findings))
				}
				return
			}
			f, ok := iisFinding(insp.Findings, tt.id)
			if !ok {
				t.Fatalf("findings %v, want %s", iisFindingIDs(insp.Findings), tt.id)
			}
			if f.Explains != tt.explains {
				t.Errorf("Explains = %v, want %v", f.Explains, tt.explains)
			}
			if f.Object == "" || f.Setting == "" || f.Title == "" || f.Detail == "" {
				t.Errorf("incomplete finding %+v", f)
			}
		})
	}
}

func TestIISSettingsRows(t *testing.T) {
	insp := inspectIIS(t, lab.NewIIS(lab.IISAllExceptEmpty), iisLoopback)
	for _, want := range [][3]string{
		{"SmtpSvc/1", "RelayIpList.raw", "EMPTY"},
		{"SmtpSvc/1", "RelayIpList", "all except the list below (empty list: everyone)"},
		{"SmtpSvc/1", "RelayForAuth", "-1"},
		{"SmtpSvc", "RelayIpList.raw", "NULL"},
		{"Service SMTPSVC", "State", "Running"},
		{"Account Guest", "Enabled", "false"},
	} {
		if v, ok := iisSetting(insp.Settings, want[0], want[1]); !ok || v != want[2] {
			t.Errorf("%s %s = %q (%v), want %q", want[0], want[1], v, ok, want[2])
		}
	}
	again := inspectIIS(t, lab.NewIIS(lab.IISAllExceptEmpty), iisLoopback)
	a, _ := json.Marshal(insp.Settings)
	b, _ := json.Marshal(again.Settings)
	if string(a) != string(b) {
		t.Fatal("settings rows are not deterministic")
	}
}

func TestIISNoWebWMI(t *testing.T) {
	h := lab.NewIIS(lab.IISNoWebWMI)
	d, _ := remediate.DriverFor(remediate.PlatformIIS)
	_, err := d.Inspect(context.Background(), &lab.DirectRunner{Host: h}, "smtp01", h.HostInfo(), nil)
	if !errors.Is(err, remediate.ErrFeatureMissing) {
		t.Fatalf("err = %v, want ErrFeatureMissing", err)
	}
	if !strings.Contains(err.Error(), "Web-WMI") {
		t.Fatalf("error does not name Web-WMI: %v", err)
	}
}

// TestIISRemediateRoundTrip: plan, apply, re-inspect (read-back), idempotent
// second plan, relay decisions, restore to the exact old bytes.
func TestIISRemediateRoundTrip(t *testing.T) {
	for _, sc := range []struct {
		name string
		s    lab.IISScenario
	}{{"all-except-empty", lab.IISAllExceptEmpty}, {"grant-everyone", lab.IISGrantEveryone}, {"unset", lab.IISUnset}, {"deny-list", lab.IISDenyList}, {"inherited", lab.IISInheritedOpen}} {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			h := lab.NewIIS(sc.s)
			r := &lab.DirectRunner{Host: h}
			d, _ := remediate.DriverFor(remediate.PlatformIIS)
			before := h.State()
			wasOpen := h.RelayAllowed(iisStranger, false, "elsewhere.example")

			insp := inspectIIS(t, h, iisStranger)
			req := remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10"), iisRange(t, "10.1.0.0/16")}, AllowAuthenticated: true}
			plan, err := d.Plan(insp, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Changes) == 0 {
				t.Fatal("no changes planned")
			}
			if c := plan.Changes[0]; c.Object != "SmtpSvc/1" || c.Current == c.New || c.Why == "" {
				t.Fatalf("first change %+v", c)
			}
			applied, err := d.Apply(ctx, r, plan)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != len(plan.Changes) {
				t.Fatalf("applied %d of %d", len(applied), len(plan.Changes))
			}
			after := inspectIIS(t, h, iisStranger)
			if mm := remediate.Compare(plan.Changes, after.Settings); len(mm) > 0 {
				t.Fatalf("read-back mismatches: %v", mm)
			}
			if iisHasHigh(after.Findings) {
				t.Fatalf("still high findings: %v", iisFindingIDs(after.Findings))
			}
			if v, _ := iisSetting(after.Settings, "SmtpSvc/1", "RelayIpList"); v != "only the list below: 127.0.0.1, 192.0.2.10, 10.1.0.0/16" {
				t.Fatalf("RelayIpList = %q", v)
			}
			second, err := d.Plan(after, req)
			if err != nil || len(second.Changes) != 0 {
				t.Fatalf("second plan not empty: %+v %v", second.Changes, err)
			}
			for _, c := range []struct {
				addr netip.Addr
				auth bool
				want bool
			}{{iisStranger, false, false}, {iisOffice, false, true}, {netip.MustParseAddr("10.1.200.3"), false, true}, {iisLoopback, false, true}, {iisStranger, true, true}} {
				if got := h.RelayAllowed(c.addr, c.auth, "elsewhere.example"); got != c.want {
					t.Errorf("after apply RelayAllowed(%s, auth=%v) = %v", c.addr, c.auth, got)
				}
			}

			b := &remediate.Backup{Schema: remediate.BackupSchema, Host: "smtp01", Platform: remediate.PlatformIIS, Inspection: insp, Plan: plan}
			if err := d.Restore(ctx, r, b); err != nil {
				t.Fatal(err)
			}
			got := h.State()
			if !got.Servers[0].RelayIpList.Equal(before.Servers[0].RelayIpList) || got.Servers[0].RelayIpList.Null != before.Servers[0].RelayIpList.Null ||
				(got.Servers[0].RelayIpList.Bytes == nil) != (before.Servers[0].RelayIpList.Bytes == nil) ||
				got.Servers[0].RelayForAuth != before.Servers[0].RelayForAuth {
				t.Fatalf("restore: got %s/%d, want %s/%d", got.Servers[0].RelayIpList, got.Servers[0].RelayForAuth, before.Servers[0].RelayIpList, before.Servers[0].RelayForAuth)
			}
			if h.RelayAllowed(iisStranger, false, "elsewhere.example") != wasOpen {
				t.Fatal("relay decision not restored")
			}
		})
	}
}

func TestIISPlanOptions(t *testing.T) {
	insp := inspectIIS(t, lab.NewIIS(lab.IISAllExceptEmpty), iisStranger)
	d, _ := remediate.DriverFor(remediate.PlatformIIS)

	p, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}, NoLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	var sawRFA bool
	for _, c := range p.Changes {
		if c.Setting == "RelayIpList" && c.New != "only the list below: 192.0.2.10" {
			t.Errorf("NoLoopback list: %q", c.New)
		}
		if c.Setting == "RelayForAuth" {
			sawRFA = true
			if c.Current != "-1" || c.New != "0" {
				t.Errorf("RelayForAuth change %+v", c)
			}
		}
	}
	if !sawRFA {
		t.Error("RelayForAuth not turned off without AllowAuthenticated")
	}

	if _, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "2001:db8::1")}}); err == nil {
		t.Error("IPv6 allow entry accepted")
	}

	p, err = d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.1-192.0.2.6")}, AllowAuthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := p.Changes[0].New; v != "only the list below: 127.0.0.1, 192.0.2.1, 192.0.2.6, 192.0.2.2/31, 192.0.2.4/31" {
		t.Errorf("range split: %q", v)
	}
}

func TestIISRemoteDomains(t *testing.T) {
	ctx := context.Background()
	h := lab.NewIIS(lab.IISRemoteDomainWildcard)
	r := &lab.DirectRunner{Host: h}
	d, _ := remediate.DriverFor(remediate.PlatformIIS)
	if !h.RelayAllowed(iisStranger, false, "victim.example") {
		t.Fatal("wildcard relay domain should relay")
	}
	insp := inspectIIS(t, h, iisStranger)
	req := remediate.Request{AllowAuthenticated: true}
	p, err := d.Plan(insp, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 0 || len(p.Notes) == 0 || !strings.Contains(strings.Join(p.Notes, "\n"), "fix relay domains") {
		t.Fatalf("without FixDomains: changes %+v notes %v", p.Changes, p.Notes)
	}
	req.FixDomains = true
	p, err = d.Plan(insp, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Object != "SmtpSvc/1/Domain/*" || p.Changes[0].New != "2" {
		t.Fatalf("domain change: %+v", p.Changes)
	}
	if _, err := d.Apply(ctx, r, p); err != nil {
		t.Fatal(err)
	}
	if h.RelayAllowed(iisStranger, false, "victim.example") {
		t.Fatal("still relays after fixing the domain")
	}
	after := inspectIIS(t, h, iisStranger)
	if mm := remediate.Compare(p.Changes, after.Settings); len(mm) > 0 {
		t.Fatal(mm)
	}
	if err := d.Restore(ctx, r, &remediate.Backup{Host: "smtp01", Inspection: insp, Plan: p}); err != nil {
		t.Fatal(err)
	}
	if !h.RelayAllowed(iisStranger, false, "victim.example") {
		t.Fatal("restore did not bring the domain back")
	}
}

// TestIISParamsAreData: hostile names travel as parameters, verbatim, and
// never as script source.
func TestIISParamsAreData(t *testing.T) {
	ctx := context.Background()
	evil := "evil'\"`$(Remove-Item C:\\ -Recurse);\r\nexit 0 #"
	h := lab.NewIIS(lab.IISClosed)
	st := h.State()
	st.Domains = append(st.Domains, remediate.IISDomain{Name: "SmtpSvc/1/Domain/" + evil, RouteAction: remediate.RouteActionDomainRelay, RelayIpList: remediate.RelayListBlob{Null: true}})
	h.SetState(st)
	r := &lab.DirectRunner{Host: h}
	d, _ := remediate.DriverFor(remediate.PlatformIIS)
	insp := inspectIIS(t, h, iisStranger)
	p, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}, FixDomains: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(ctx, r, p); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, c := range h.Calls() {
		if c.Script == remediate.ScriptIISWriteDomain {
			got = c.Params["domain"]
		}
		if c.Script == remediate.ScriptIISWrite && !strings.HasPrefix(c.Params["relayiplist"], "18000080") {
			t.Errorf("relayiplist param %q", c.Params["relayiplist"])
		}
	}
	if got != "SmtpSvc/1/Domain/"+evil {
		t.Fatalf("domain param = %q", got)
	}
	// Allow-list entries cannot carry such text at all: they are parsed
	// into addresses and travel as the hex of the encoded list.
	for _, bad := range []string{"192.0.2.1;$(calc)", "192.0.2.1'", "`192.0.2.1`", "192.0.2.1\nexit"} {
		if _, err := remediate.ParseAddrRange(bad); err == nil {
			t.Errorf("allow entry %q accepted", bad)
		}
	}
	for _, name := range []string{"iis-read", "iis-write", "iis-write-domain"} {
		run, err := r.Run(ctx, name, map[string]string{"x": "1"})
		if err != nil {
			t.Fatal(err)
		}
		if run.ExitCode == 0 {
			t.Errorf("%s accepted an unknown parameter", name)
		}
	}
}

func TestIISWriteRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	r := &lab.DirectRunner{Host: lab.NewIIS(lab.IISClosed)}
	for name, p := range map[string]map[string]string{
		"unknown server": {"server": "SmtpSvc/9", "relayiplist": "EMPTY", "relayforauth": "0"},
		"bad hex":        {"server": "SmtpSvc/1", "relayiplist": "18000080Z", "relayforauth": "0"},
		"odd hex":        {"server": "SmtpSvc/1", "relayiplist": "180", "relayforauth": "0"},
		"bad rfa":        {"server": "SmtpSvc/1", "relayiplist": "EMPTY", "relayforauth": "-1; Remove-Item"},
		"missing rfa":    {"server": "SmtpSvc/1", "relayiplist": "EMPTY"},
	} {
		t.Run(name, func(t *testing.T) {
			run, err := r.Run(ctx, remediate.ScriptIISWrite, p)
			if err != nil {
				t.Fatal(err)
			}
			if run.ExitCode == 0 || len(run.Errors) == 0 {
				t.Fatalf("accepted: exit %d", run.ExitCode)
			}
		})
	}
}

func TestIISBroadRange(t *testing.T) {
	h := lab.NewIIS(lab.IISClosed)
	st := h.State()
	m, _ := remediate.IPMaskFromPrefix(netip.MustParsePrefix("10.0.0.0/8"))
	lo, _ := remediate.IPMaskFromPrefix(netip.MustParsePrefix("127.0.0.1/32"))
	b, err := remediate.BlobOf(remediate.RelayList{Grant: []remediate.IPMask{lo, m}, Flags: 1})
	if err != nil {
		t.Fatal(err)
	}
	st.Servers[0].RelayIpList = b
	h.SetState(st)
	insp := inspectIIS(t, h, iisStranger)
	f, ok := iisFinding(insp.Findings, "IIS-RELAY-BROAD-RANGE")
	if !ok || f.Severity != remediate.SeverityMedium || f.Explains || !strings.Contains(f.Detail, "10.0.0.0/8") {
		t.Fatalf("findings %+v", insp.Findings)
	}
	if iisHasHigh(insp.Findings) {
		t.Fatal("a broad range not covering the prober is not high")
	}
	insp = inspectIIS(t, h, netip.MustParseAddr("10.9.9.9"))
	if _, ok := iisFinding(insp.Findings, "IIS-RELAY-GRANT-PROBER"); !ok {
		t.Fatalf("prober inside the range: %v", iisFindingIDs(insp.Findings))
	}
}

// TestIISPlanAuthenticatedOnly: no allowed client and no loopback leaves
// the unset list (authenticated relay only), written as NULL.
func TestIISPlanAuthenticatedOnly(t *testing.T) {
	ctx := context.Background()
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	d, _ := remediate.DriverFor(remediate.PlatformIIS)
	req := remediate.Request{NoLoopback: true, AllowAuthenticated: true}
	p, err := d.Plan(inspectIIS(t, h, iisStranger), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 2 || p.Changes[1].Setting != "RelayIpList.raw" || p.Changes[1].New != "NULL" {
		t.Fatalf("changes %+v", p.Changes)
	}
	if _, err := d.Apply(ctx, &lab.DirectRunner{Host: h}, p); err != nil {
		t.Fatal(err)
	}
	if h.RelayAllowed(iisLoopback, false, "x.example") || !h.RelayAllowed(iisStranger, true, "x.example") {
		t.Fatal("want authenticated relay only")
	}
	if again, err := d.Plan(inspectIIS(t, h, iisStranger), req); err != nil || len(again.Changes) != 0 {
		t.Fatalf("second plan %+v %v", again, err)
	}
	// With an inherited service-level value, clearing would inherit it.
	if _, err := d.Plan(inspectIIS(t, lab.NewIIS(lab.IISInheritedOpen), iisStranger), req); err == nil {
		t.Fatal("plan would let the server inherit the open service-level list")
	}
}

// TestIISADSICrossCheck: iis-read also reports IIS's own (ADSI) reading of
// each relay list; a disagreement with relaylock's decoder is reported and
// blocks writing hand-built bytes unless forced.
func TestIISADSICrossCheck(t *testing.T) {
	d, _ := remediate.DriverFor(remediate.PlatformIIS)
	req := remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}}

	insp := inspectIIS(t, lab.NewIIS(lab.IISClosed), iisStranger)
	if v, _ := iisSetting(insp.Settings, "SmtpSvc/1", "RelayIpList.adsi"); v != "GrantByDefault=false; IPGrant=[127.0.0.1, 255.255.255.255]; IPDeny=[]" {
		t.Fatalf("adsi row %q", v)
	}
	if _, ok := iisFinding(insp.Findings, "IIS-RELAY-LIST-DECODE-MISMATCH"); ok {
		t.Fatal("mismatch reported for agreeing views")
	}

	h := lab.NewIIS(lab.IISAllExceptEmpty)
	h.SetADSIView("SmtpSvc/1", &remediate.IISADSIView{Present: true, IPGrant: []string{"127.0.0.1, 255.255.255.255"}})
	insp = inspectIIS(t, h, iisStranger)
	if _, ok := iisFinding(insp.Findings, "IIS-RELAY-LIST-DECODE-MISMATCH"); !ok {
		t.Fatalf("no mismatch finding: %v", iisFindingIDs(insp.Findings))
	}
	if _, err := d.Plan(insp, req); !errors.Is(err, remediate.ErrRelayList) {
		t.Fatalf("plan err = %v, want ErrRelayList", err)
	}
	req.Force = true
	if p, err := d.Plan(insp, req); err != nil || len(p.Changes) == 0 {
		t.Fatalf("forced plan: %v", err)
	}

	insp = inspectIIS(t, lab.NewIIS(lab.IISNoMetabaseCompat), iisStranger)
	if v, _ := iisSetting(insp.Settings, "SmtpSvc/1", "RelayIpList.adsi"); !strings.HasPrefix(v, "unavailable: ") {
		t.Fatalf("adsi row %q", v)
	}
	if _, err := d.Plan(insp, remediate.Request{Allow: req.Allow}); err != nil {
		t.Fatalf("ADSI unavailable must not block: %v", err)
	}
}
