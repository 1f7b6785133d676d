package lab

import (
	"context"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

func TestEx2003DS2MB(t *testing.T) {
	ctx := context.Background()
	h := NewExchange2003(Ex2003Open)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.now = func() time.Time { return now }
	h.SetSyncDelay(15 * time.Second)
	r := &DirectRunner{Host: h}
	info, _, err := remediate.Detect(ctx, r)
	if err != nil || info.Platform != remediate.PlatformExchange2003 || info.ExchangeVersion != "2003" {
		t.Fatalf("detect: %+v %v", info, err)
	}
	closed := "NULL"
	run, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, map[string]string{"dn": Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": closed, "relayforauth": "TRUE", "dc": Ex2003ConfigDC})
	if err != nil || run.ExitCode != 0 {
		t.Fatalf("write: %v %+v", err, run.Errors)
	}
	if !h.RelayAllowed(labStranger, false, "x.example") {
		t.Fatal("metabase changed before DS2MB ran")
	}
	now = now.Add(14 * time.Second)
	if !h.RelayAllowed(labStranger, false, "x.example") || h.Syncs() != 0 {
		t.Fatal("DS2MB ran early")
	}
	now = now.Add(time.Second)
	if h.RelayAllowed(labStranger, false, "x.example") || h.Syncs() != 1 {
		t.Fatal("DS2MB did not copy AD into the metabase")
	}
	// A metabase-only change is undone by the next DS2MB run.
	run, err = r.Run(ctx, remediate.ScriptIISWrite, map[string]string{"server": "SmtpSvc/1", "relayiplist": "EMPTY", "relayforauth": "-1"})
	if err != nil || run.ExitCode != 0 {
		t.Fatal(err)
	}
	if !h.RelayAllowed(labStranger, false, "x.example") {
		t.Fatal("metabase write not effective")
	}
	h.SyncNow()
	if h.RelayAllowed(labStranger, false, "x.example") {
		t.Fatal("periodic DS2MB did not undo the metabase-only change")
	}
	// Never-sync fault.
	h.SetNeverSync(true)
	if _, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, map[string]string{"dn": Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": "EMPTY", "relayforauth": "TRUE", "dc": Ex2003ConfigDC}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	h.SyncNow()
	if h.RelayAllowed(labStranger, false, "x.example") {
		t.Fatal("DS2MB ran despite the never-sync fault")
	}
	// Other servers' objects are not copied into this metabase.
	if ad := h.ADState(); len(ad) != 2 || ad[1].OnServer("MAIL03") {
		t.Fatalf("AD objects %+v", ad)
	}
}

// TestEx2003ReadADChecksSchema: the read looks the attribute up in the
// schema first and fails with kind schema-missing when it is absent,
// instead of returning no value (which reads as an unset, closed list).
func TestEx2003ReadADChecksSchema(t *testing.T) {
	for name, tc := range map[string]struct {
		attr     string
		noSchema bool
	}{
		"other attribute":     {"msExchSomethingElse", false},
		"schema without attr": {remediate.Ex2003RelayIpListAttr, true},
	} {
		t.Run(name, func(t *testing.T) {
			h := NewExchange2003(Ex2003Open)
			h.SetSchemaWithoutRelayAttr(tc.noSchema)
			run, err := (&DirectRunner{Host: h}).Run(context.Background(), remediate.ScriptEx2003ReadAD, map[string]string{"relayiplistattr": tc.attr, "dc": ""})
			if err != nil {
				t.Fatal(err)
			}
			if run.ExitCode != 6 || len(run.Output.Of("advs")) != 0 {
				t.Fatalf("exit %d, %d objects returned", run.ExitCode, len(run.Output.Of("advs")))
			}
			e, ok := run.Output.First("error")
			if !ok || e.Str("kind") != "schema-missing" || e.Str("attribute") != tc.attr {
				t.Fatalf("error record %+v", e)
			}
		})
	}
}

// TestEx2003Replication: a write to the DC a serverless bind reaches
// (DC02) is not seen by DS2MB, which reads DC01, until it replicates; a
// write to DC01 is. Replication resolves conflicts by version, then time.
func TestEx2003Replication(t *testing.T) {
	ctx := context.Background()
	h := NewExchange2003(Ex2003Open)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.now = func() time.Time { return now }
	h.SetSyncDelay(5 * time.Second)
	h.SetReplicationDelay(10 * time.Minute)
	r := &DirectRunner{Host: h}
	write := func(dc, ril string) {
		t.Helper()
		run, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, map[string]string{"dn": Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": ril, "relayforauth": "TRUE", "dc": dc})
		if err != nil || run.ExitCode != 0 {
			t.Fatalf("write on %q: %v %v", dc, err, run.Errors)
		}
	}
	write("", "NULL") // serverless: lands on DC02
	if got := h.ADStateOn(Ex2003OtherDC)[0].RelayIpList; !got.Null {
		t.Fatalf("DC02 has %s", got)
	}
	now = now.Add(time.Minute)
	if !h.RelayAllowed(labStranger, false, "x.example") || h.ADState()[0].RelayIpList.Null {
		t.Fatal("DS2MB saw a write to DC02 before it replicated to DC01")
	}
	now = now.Add(9*time.Minute + 4*time.Second)
	if !h.RelayAllowed(labStranger, false, "x.example") || !h.ADState()[0].RelayIpList.Null {
		t.Fatal("replicated to DC01, but DS2MB must only run 5 s after the notification")
	}
	now = now.Add(time.Second)
	if h.RelayAllowed(labStranger, false, "x.example") {
		t.Fatal("DS2MB did not copy the replicated change")
	}

	// The read names the DC it used and DS2MB's.
	run, err := r.Run(ctx, remediate.ScriptEx2003ReadAD, map[string]string{"relayiplistattr": remediate.Ex2003RelayIpListAttr, "dc": ""})
	if err != nil || run.ExitCode != 0 {
		t.Fatal(err)
	}
	if dc, _ := run.Output.First("dc"); dc.Str("name") != Ex2003ConfigDC || dc.Str("source") != dcSourceDSAccess || dc.Str("ds2mb") != Ex2003ConfigDC {
		t.Fatalf("dc record %+v", dc)
	}
	h.SetDSAccessUnavailable(true)
	run, _ = r.Run(ctx, remediate.ScriptEx2003ReadAD, map[string]string{"relayiplistattr": remediate.Ex2003RelayIpListAttr, "dc": ""})
	if dc, _ := run.Output.First("dc"); dc.Str("name") != Ex2003OtherDC || dc.Str("source") != dcSourceLocator || !dc.IsNull("ds2mb") {
		t.Fatalf("dc record without DSAccess %+v", dc)
	}
	run, _ = r.Run(ctx, remediate.ScriptEx2003ReadAD, map[string]string{"relayiplistattr": remediate.Ex2003RelayIpListAttr, "dc": "dc09"})
	if e, _ := run.Output.First("error"); run.ExitCode != 5 || e.Str("kind") != "ad-unavailable" {
		t.Fatalf("unknown DC: exit %d %+v", run.ExitCode, e)
	}

	// Conflict: an older write replicating late loses to a later one.
	write(Ex2003OtherDC, "EMPTY")
	now = now.Add(time.Second)
	write(Ex2003ConfigDC, "NULL")
	now = now.Add(time.Hour)
	if !h.ADState()[0].RelayIpList.Null || !h.ADStateOn(Ex2003OtherDC)[0].RelayIpList.Null {
		t.Fatal("the earlier write won the replication conflict")
	}
}
