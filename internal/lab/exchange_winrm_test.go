package lab

import (
	"context"
	"net/netip"
	"net/smtp"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// TestExchangeOverWinRM runs the whole Exchange cycle end to end: the real
// WinRM client and runner against the lab's WS-Management face (scripts
// as embedded text, parameters as data), and the lab's SMTP face probed
// from two loopback addresses before the change, after it and after the
// rollback.
func TestExchangeOverWinRM(t *testing.T) {
	h := Exchange2016OpenCustomConnector()
	l := startLab(t, Config{Host: h, Platform: "exchange2016", Password: "pw-Exch-16", WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
	r := ntlmRunner(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prober := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	stranger, friend := "127.0.0.1", "127.0.0.2"
	auth := smtp.PlainAuth("", l.User, l.Password, "localhost")

	if code, _ := rcpt(t, l, stranger, nil, "victim@elsewhere.test"); code != 250 {
		t.Fatalf("scenario does not relay before the change: %d", code)
	}
	insp, err := remediate.InspectHost(ctx, r, "ex1", prober)
	if err != nil {
		t.Fatal(err)
	}
	explained := false
	for _, f := range insp.Findings {
		explained = explained || (f.ID == remediate.FindExchAnonRelay && f.Explains)
	}
	if insp.Platform != remediate.PlatformExchange || !explained {
		t.Fatalf("platform %s findings %+v", insp.Platform, insp.Findings)
	}

	allow, _ := remediate.ParseAddrRange(friend)
	backup := filepath.Join(t.TempDir(), "backup.json")
	out, err := remediate.Remediate(ctx, remediate.Options{Host: "ex1", Runner: r, Yes: true, Prober: prober,
		Request: remediate.Request{Allow: []remediate.AddrRange{allow}, AllowAuthenticated: true}, BackupPath: backup})
	if err != nil || out.Change.Result != "applied" || len(out.Change.Mismatches) != 0 {
		t.Fatalf("remediate: %v %+v", err, out.Change)
	}
	if code, _ := rcpt(t, l, stranger, nil, "victim@elsewhere.test"); code != 550 {
		t.Errorf("stranger still relays after the change: %d", code)
	}
	if code, _ := rcpt(t, l, friend, nil, "victim@elsewhere.test"); code != 250 {
		t.Errorf("allowed client cannot relay: %d", code)
	}
	if code, msg := rcpt(t, l, stranger, auth, "victim@elsewhere.test"); code != 250 {
		t.Errorf("authenticated client cannot relay: %d %s", code, msg)
	}
	if code, _ := rcpt(t, l, stranger, nil, "postmaster@"+LabExchangeDomain); code != 250 {
		t.Errorf("inbound mail for the accepted domain refused: %d", code)
	}

	b, sum, err := remediate.LoadBackup(backup)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := remediate.Rollback(ctx, remediate.RollbackOptions{Host: "ex1", Runner: r, Backup: b, BackupFile: backup, BackupSHA256: sum, Prober: prober})
	if err != nil || len(rec.Mismatches) != 0 {
		t.Fatalf("rollback: %v %+v", err, rec)
	}
	if code, _ := rcpt(t, l, stranger, nil, "victim@elsewhere.test"); code != 250 {
		t.Errorf("rollback did not restore the old behaviour: %d", code)
	}
}
