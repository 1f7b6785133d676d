package remediate_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// TestIISEx2003RemediateFlow runs the whole remediate flow (detect,
// inspect, plan, backup file, apply, read-back) and then a rollback from
// the backup file, with the registered drivers against the lab hosts.
func TestIISEx2003RemediateFlow(t *testing.T) {
	ex := lab.NewExchange2003(lab.Ex2003MetabaseOpenADClosed)
	ex.SetSyncDelay(20 * time.Millisecond)
	for _, tc := range []struct {
		name string
		h    lab.Host
	}{{"iis", lab.NewIIS(lab.IISAllExceptEmpty)}, {"exchange2003", ex}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := &lab.DirectRunner{Host: tc.h}
			dir := t.TempDir()
			opts := remediate.Options{
				Host: tc.name, Runner: r, Yes: true,
				Request: remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}, AllowAuthenticated: true},
				Prober:  []netip.Addr{iisStranger}, BackupPath: filepath.Join(dir, "backup.json"),
			}
			if !tc.h.RelayAllowed(iisStranger, false, "elsewhere.example") {
				t.Fatal("scenario should start open")
			}
			out, err := remediate.Remediate(ctx, opts)
			if err != nil {
				t.Fatalf("remediate: %v", err)
			}
			if out.NoChange || out.Change == nil || out.Change.Result != remediate.ResultApplied {
				t.Fatalf("outcome %+v", out)
			}
			// The change names the inspection it was planned from.
			if id := out.Change.Inspection; id == "" || id != out.Before.Ref() {
				t.Errorf("change names inspection %q, planned from %q", id, out.Before.Ref())
			}
			if tc.h.RelayAllowed(iisStranger, false, "elsewhere.example") || !tc.h.RelayAllowed(iisOffice, false, "elsewhere.example") {
				t.Fatal("relay decisions after remediate are wrong")
			}

			opts.BackupPath = filepath.Join(dir, "backup2.json")
			again, err := remediate.Remediate(ctx, opts)
			if err != nil || !again.NoChange {
				t.Fatalf("second run should change nothing: %v %+v", err, again.Plan)
			}

			b, sum, err := remediate.LoadBackup(filepath.Join(dir, "backup.json"))
			if err != nil {
				t.Fatal(err)
			}
			rec, _, err := remediate.Rollback(ctx, remediate.RollbackOptions{Host: tc.name, Runner: r, Backup: b, BackupFile: "backup.json", BackupSHA256: sum, Prober: []netip.Addr{iisStranger}})
			if err != nil {
				t.Fatalf("rollback: %v (%+v)", err, rec)
			}
			if rec.Result != remediate.ResultRestored {
				t.Fatalf("rollback result %q %v", rec.Result, rec.Mismatches)
			}
			// The rollback names the inspection its backup file holds:
			// the one the remediation was planned from.
			if rec.Inspection != out.Change.Inspection || rec.Kind != remediate.ChangeRollback {
				t.Errorf("rollback (%s) names inspection %q, the remediation %q", rec.Kind, rec.Inspection, out.Change.Inspection)
			}
			if !tc.h.RelayAllowed(iisStranger, false, "elsewhere.example") {
				t.Fatal("rollback did not bring the old (open) state back")
			}
		})
	}
}

// TestIISRollbackAfterFailedReadBack: the read-back after the change fails;
// remediate rolls back automatically to the exact old bytes.
func TestIISRollbackAfterFailedReadBack(t *testing.T) {
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	reads := 0
	r := &lab.DirectRunner{Host: h, Fail: func(script string, _ map[string]string) error {
		if script == remediate.ScriptIISRead {
			reads++
			if reads == 2 {
				return errors.New("connection reset")
			}
		}
		return nil
	}}
	_, err := remediate.Remediate(context.Background(), remediate.Options{
		Host: "smtp01", Runner: r, Yes: true,
		Request:    remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}},
		BackupPath: filepath.Join(t.TempDir(), "backup.json"),
	})
	if !errors.Is(err, remediate.ErrRolledBack) {
		t.Fatalf("err = %v, want ErrRolledBack", err)
	}
	st := h.State()
	if got := st.Servers[0].RelayIpList; got.Null || got.Bytes == nil || len(got.Bytes) != 0 || st.Servers[0].RelayForAuth != remediate.RelayForAuthEnabled {
		t.Fatalf("after rollback: %s / %d, want EMPTY / -1", got, st.Servers[0].RelayForAuth)
	}
}
