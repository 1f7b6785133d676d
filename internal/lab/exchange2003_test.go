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
	run, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, map[string]string{"dn": Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": closed, "relayforauth": "TRUE"})
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
	if _, err := r.Run(ctx, remediate.ScriptEx2003WriteAD, map[string]string{"dn": Ex2003DN("MAIL03", 1), "relayiplistattr": remediate.Ex2003RelayIpListAttr, "relayiplist": "EMPTY", "relayforauth": "TRUE"}); err != nil {
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

func TestEx2003ReadADWithWrongAttribute(t *testing.T) {
	h := NewExchange2003(Ex2003Open)
	run, err := (&DirectRunner{Host: h}).Run(context.Background(), remediate.ScriptEx2003ReadAD, map[string]string{"relayiplistattr": "msExchSomethingElse"})
	if err != nil || run.ExitCode != 0 {
		t.Fatal(err)
	}
	for _, rec := range run.Output.Records {
		if !rec.IsNull("relayiplist") {
			t.Fatalf("an attribute the object lacks was returned: %+v", rec)
		}
	}
}
