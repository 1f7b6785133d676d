package remediate_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// fastEx2003 is the driver with test-sized DS2MB waits.
func fastEx2003(timeout time.Duration) *remediate.Exchange2003Driver {
	return &remediate.Exchange2003Driver{SyncTimeout: timeout, PollInterval: 5 * time.Millisecond}
}

func newEx2003(s lab.Ex2003Scenario) *lab.Ex2003Host {
	h := lab.NewExchange2003(s)
	h.SetSyncDelay(30 * time.Millisecond)
	return h
}

func inspectEx2003(t *testing.T, d remediate.Driver, h lab.Host) *remediate.Inspection {
	t.Helper()
	insp, err := d.Inspect(context.Background(), &lab.DirectRunner{Host: h}, "mail03", h.HostInfo(), []netip.Addr{iisStranger})
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return insp
}

func TestEx2003Registered(t *testing.T) {
	d, err := remediate.DriverFor(remediate.PlatformExchange2003)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*remediate.Exchange2003Driver); !ok {
		t.Fatalf("driver %T", d)
	}
	h, err := lab.NewHost("exchange2003")
	if err != nil {
		t.Fatal(err)
	}
	if info := h.HostInfo(); info.ExchangeVersion != "2003" || info.Platform != remediate.PlatformExchange2003 || info.PSVersion != "2.0" {
		t.Fatalf("host info %+v", info)
	}
	if !h.RelayAllowed(iisStranger, false, "elsewhere.example") {
		t.Fatal("registered exchange2003 host should start as an open relay")
	}
	ih, err := lab.NewHost("iis")
	if err != nil || !ih.RelayAllowed(iisStranger, false, "elsewhere.example") {
		t.Fatalf("registered iis host should start open: %v", err)
	}
}

func TestEx2003InspectFindings(t *testing.T) {
	d := fastEx2003(time.Second)
	tests := []struct {
		s       lab.Ex2003Scenario
		want    []string
		notWant string
	}{
		{lab.Ex2003Open, []string{"EX2003-RELAY-ALL-EXCEPT-EMPTY"}, "EX2003-AD-METABASE-DISAGREE"},
		{lab.Ex2003Default, []string{"EX2003-RELAY-RESTRICTED"}, "EX2003-AD-METABASE-DISAGREE"},
		{lab.Ex2003MetabaseOpenADClosed, []string{"EX2003-RELAY-ALL-EXCEPT-EMPTY", "EX2003-AD-METABASE-DISAGREE"}, ""},
		{lab.Ex2003ADOpenMetabaseClosed, []string{"EX2003-AD-METABASE-DISAGREE", "EX2003-AD-RELAY-ALL-EXCEPT-EMPTY"}, "EX2003-RELAY-ALL-EXCEPT-EMPTY"},
		{lab.Ex2003ADUnavailable, []string{"EX2003-RELAY-ALL-EXCEPT-EMPTY", "EX2003-AD-UNREADABLE"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.want, "+"), func(t *testing.T) {
			insp := inspectEx2003(t, d, newEx2003(tt.s))
			for _, id := range tt.want {
				if _, ok := iisFinding(insp.Findings, id); !ok {
					t.Errorf("missing %s in %v", id, iisFindingIDs(insp.Findings))
				}
			}
			if tt.notWant != "" {
				if _, ok := iisFinding(insp.Findings, tt.notWant); ok {
					t.Errorf("unexpected %s", tt.notWant)
				}
			}
			if f, ok := iisFinding(insp.Findings, "EX2003-AD-METABASE-DISAGREE"); ok {
				if !strings.Contains(f.Detail, "next DS2MB sync") || !strings.Contains(f.Detail, "enforces now") {
					t.Errorf("disagreement detail does not say which side wins: %s", f.Detail)
				}
				if tt.s == lab.Ex2003ADOpenMetabaseClosed && f.Severity != remediate.SeverityHigh {
					t.Errorf("AD open / metabase closed should be high, got %s", f.Severity)
				}
			}
			// Only this server's AD object is reported.
			for _, s := range insp.Settings {
				if strings.Contains(s.Object, "CN=MAIL04") {
					t.Fatalf("other server's object in settings: %s", s.Object)
				}
			}
		})
	}
}

func TestEx2003RemediateRoundTrip(t *testing.T) {
	for _, sc := range []struct {
		name string
		s    lab.Ex2003Scenario
	}{{"open", lab.Ex2003Open}, {"metabase-open-ad-closed", lab.Ex2003MetabaseOpenADClosed}, {"ad-open-metabase-closed", lab.Ex2003ADOpenMetabaseClosed}} {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newEx2003(sc.s)
			r := &lab.DirectRunner{Host: h}
			d := fastEx2003(5 * time.Second)
			adBefore := h.ADState()
			mbBefore := h.MetabaseState()
			wasOpen := h.RelayAllowed(iisStranger, false, "elsewhere.example")

			insp := inspectEx2003(t, d, h)
			req := remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}, AllowAuthenticated: true}
			plan, err := d.Plan(insp, req)
			if err != nil {
				t.Fatal(err)
			}
			var adChange, mbChange bool
			for _, c := range plan.Changes {
				adChange = adChange || strings.HasPrefix(c.Object, "CN=1,CN=SMTP")
				mbChange = mbChange || c.Object == "SmtpSvc/1"
			}
			if !adChange || !mbChange {
				t.Fatalf("plan must change AD and expect the metabase: %+v", plan.Changes)
			}
			applied, err := d.Apply(ctx, r, plan)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != len(plan.Changes) {
				t.Fatalf("applied %d of %d", len(applied), len(plan.Changes))
			}
			if h.Syncs() == 0 {
				t.Fatal("Apply returned before DS2MB ran")
			}
			after := inspectEx2003(t, d, h)
			if mm := remediate.Compare(plan.Changes, after.Settings); len(mm) > 0 {
				t.Fatalf("read-back: %v", mm)
			}
			if iisHasHigh(after.Findings) {
				t.Fatalf("still high: %v", iisFindingIDs(after.Findings))
			}
			if _, ok := iisFinding(after.Findings, "EX2003-AD-METABASE-DISAGREE"); ok {
				t.Fatal("AD and metabase still disagree")
			}
			again, err := d.Plan(after, req)
			if err != nil || len(again.Changes) != 0 {
				t.Fatalf("second plan: %+v %v", again.Changes, err)
			}
			if h.RelayAllowed(iisStranger, false, "elsewhere.example") || !h.RelayAllowed(iisOffice, false, "elsewhere.example") ||
				!h.RelayAllowed(iisStranger, true, "elsewhere.example") {
				t.Fatal("relay decisions after apply are wrong")
			}
			// Other servers' objects are never touched.
			if got := h.ADState(); !got[1].RelayIpList.Equal(adBefore[1].RelayIpList) {
				t.Fatal("MAIL04 changed")
			}

			if err := d.Restore(ctx, r, &remediate.Backup{Host: "mail03", Inspection: insp, Plan: plan}); err != nil {
				t.Fatal(err)
			}
			got := h.ADState()
			if !got[0].RelayIpList.Equal(adBefore[0].RelayIpList) || got[0].RelayForAuthOn() != adBefore[0].RelayForAuthOn() {
				t.Fatalf("AD not restored: %s, want %s", got[0].RelayIpList, adBefore[0].RelayIpList)
			}
			mb := h.MetabaseState()
			if !mb.Servers[0].RelayIpList.Equal(mbBefore.Servers[0].RelayIpList) || mb.Servers[0].RelayForAuth != mbBefore.Servers[0].RelayForAuth {
				t.Fatalf("metabase after restore %s, want the saved %s", mb.Servers[0].RelayIpList, mbBefore.Servers[0].RelayIpList)
			}
			if h.RelayAllowed(iisStranger, false, "elsewhere.example") != wasOpen {
				t.Fatal("relay decision after restore differs from before")
			}
			// The next DS2MB run makes the metabase follow AD again.
			h.SyncNow()
			if got := h.MetabaseState().Servers[0].RelayIpList; !got.Equal(adBefore[0].RelayIpList) {
				t.Fatalf("after DS2MB the metabase has %s, AD %s", got, adBefore[0].RelayIpList)
			}
		})
	}
}

func TestEx2003NeverSyncs(t *testing.T) {
	ctx := context.Background()
	h := newEx2003(lab.Ex2003Open)
	h.SetNeverSync(true)
	r := &lab.DirectRunner{Host: h}
	d := fastEx2003(100 * time.Millisecond)
	insp := inspectEx2003(t, d, h)
	plan, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}})
	if err != nil {
		t.Fatal(err)
	}
	applied, err := d.Apply(ctx, r, plan)
	if !errors.Is(err, remediate.ErrSyncTimeout) {
		t.Fatalf("err = %v, want ErrSyncTimeout", err)
	}
	for _, c := range applied {
		if c.Object == "SmtpSvc/1" {
			t.Fatalf("metabase change reported as applied: %+v", c)
		}
	}
	if len(applied) == 0 {
		t.Fatal("the AD write that did happen is not reported")
	}
	if !h.RelayAllowed(iisStranger, false, "elsewhere.example") {
		t.Fatal("metabase changed without DS2MB")
	}
	// Rollback with DS2MB back: AD returns to its saved value.
	h.SetNeverSync(false)
	if err := d.Restore(ctx, r, &remediate.Backup{Host: "mail03", Inspection: insp, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if got := h.ADState()[0].RelayIpList; got.String() != "EMPTY" {
		t.Fatalf("AD after restore = %s", got)
	}
}

func TestEx2003ADUnavailable(t *testing.T) {
	d := fastEx2003(time.Second)
	insp := inspectEx2003(t, d, newEx2003(lab.Ex2003ADUnavailable))
	_, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}})
	if !errors.Is(err, remediate.ErrADUnavailable) {
		t.Fatalf("err = %v, want ErrADUnavailable", err)
	}
}

func TestEx2003NoADObject(t *testing.T) {
	d := fastEx2003(time.Second)
	insp := inspectEx2003(t, d, newEx2003(lab.Ex2003NoADObject))
	if _, ok := iisFinding(insp.Findings, "EX2003-AD-OBJECT-MISSING"); !ok {
		t.Fatalf("findings %v", iisFindingIDs(insp.Findings))
	}
	if _, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}}); err == nil || !strings.Contains(err.Error(), "Exchange System Manager") {
		t.Fatalf("plan must refuse an open virtual server it cannot change: %v", err)
	}
}

func TestEx2003WriteIsData(t *testing.T) {
	ctx := context.Background()
	h := newEx2003(lab.Ex2003Open)
	r := &lab.DirectRunner{Host: h}
	evil := "CN=1'\"`$(calc);\nexit 0,CN=SMTP"
	run, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, map[string]string{
		"dn": evil, "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": "EMPTY", "relayforauth": "TRUE",
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.ExitCode == 0 {
		t.Fatal("unknown DN accepted")
	}
	calls := h.Calls()
	if got := calls[len(calls)-1].Params["dn"]; got != evil {
		t.Fatalf("dn arrived as %q", got)
	}
	for name, p := range map[string]map[string]string{
		"bad rfa":   {"dn": lab.Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": "EMPTY", "relayforauth": "$true"},
		"bad attr":  {"dn": lab.Ex2003DN("MAIL03", 1), "relayiplistattr": "x;y", "relayiplist": "EMPTY", "relayforauth": "TRUE"},
		"bad hex":   {"dn": lab.Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": "0g", "relayforauth": "TRUE"},
		"extra":     {"dn": lab.Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": "EMPTY", "relayforauth": "TRUE", "x": ""},
		"wrong att": {"dn": lab.Ex2003DN("MAIL03", 1), "relayiplistattr": "msExchOther", "relayiplist": "EMPTY", "relayforauth": "TRUE"},
	} {
		t.Run(name, func(t *testing.T) {
			run, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, p)
			if err != nil {
				t.Fatal(err)
			}
			if run.ExitCode == 0 {
				t.Fatal("accepted")
			}
		})
	}
}

// TestEx2003SystemAttendantStopped: with MSExchangeSA stopped DS2MB does
// not run; the plan says so, and Apply reports the change pending (its AD
// part applied) rather than failed. Starting the System Attendant lets
// DS2MB copy it.
func TestEx2003SystemAttendantStopped(t *testing.T) {
	ctx := context.Background()
	h := newEx2003(lab.Ex2003Open)
	h.StopSystemAttendant()
	r := &lab.DirectRunner{Host: h}
	d := fastEx2003(100 * time.Millisecond)
	info, _, err := remediate.Detect(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	insp, err := d.Inspect(ctx, r, "mail03", info, []netip.Addr{iisStranger})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := d.Plan(insp, remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan.Notes, "\n"), "System Attendant (MSExchangeSA), which runs DS2MB, is Stopped") {
		t.Errorf("plan notes %q", plan.Notes)
	}
	applied, err := d.Apply(ctx, r, plan)
	if !errors.Is(err, remediate.ErrPending) || len(applied) == 0 {
		t.Fatalf("err = %v, applied %d; want ErrPending with the AD changes applied", err, len(applied))
	}
	h.StartSystemAttendant()
	if h.RelayAllowed(iisStranger, false, "elsewhere.example") {
		t.Fatal("DS2MB did not copy the change when the System Attendant started")
	}
}
