package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate/doctor"
	"github.com/relaylock/relaylock/report/evidence"
)

// relaylock doctor against the lab: exit 0 and every applicable check
// passing on a healthy host; exit 1 naming the failed check and its fix on
// a faulty one; the checklist in the evidence log; never the password.
func TestDoctorCLI(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		lr := startLab(t, lab.NewIIS(lab.IISClosed))
		ev := filepath.Join(lr.dir, "ev.json")
		code, out, errOut := lr.run(labTestPassword, append([]string{"doctor", "--evidence", ev}, lr.winrmArgs()...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if !strings.Contains(out, "PASS  stdin") || !strings.Contains(out, "0 failed") {
			t.Errorf("output:\n%s", out)
		}
		b, err := evidence.Load(ev)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range b.Log {
			if l.Step == "doctor" {
				n++
			}
		}
		if n != 12 {
			t.Errorf("%d doctor log entries, want 12", n)
		}
		raw, _ := os.ReadFile(ev)
		if strings.Contains(string(raw)+out+errOut, labTestPassword) {
			t.Error("the password leaked")
		}
	})
	t.Run("memory quota on Exchange 2010, json", func(t *testing.T) {
		lr := startLab(t, lab.Exchange2010OpenDefault())
		code, out, errOut := lr.run(labTestPassword, append([]string{"doctor", "--format", "json"}, lr.winrmArgs()...)...)
		if code != exitError {
			t.Fatalf("exit %d, want %d\n%s\n%s", code, exitError, out, errOut)
		}
		var rep doctor.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// WinRM 2.0's default quota: the quota check fails, and so does
		// the Exchange shell, which the quota ends; both give its fix.
		for _, id := range []string{doctor.CheckMemoryQuota, doctor.CheckExchange} {
			c, ok := rep.Get(id)
			if !ok || c.Status != doctor.Fail || !strings.Contains(c.Fix, `MaxMemoryPerShellMB="1024"`) {
				t.Errorf("%s check %+v", id, c)
			}
		}
		if !strings.Contains(errOut, "2 check(s) failed") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if code, _, _ := runCLI(t, labTestPassword, "doctor"); code != exitUsage {
			t.Errorf("no host: exit %d, want %d", code, exitUsage)
		}
	})
}
