package remediate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/templates"
)

// secretRunner stands for a runner that (against the contract) reports a
// secret parameter: the change record must not carry it.
type secretRunner struct{ remediate.Runner }

func (s secretRunner) Run(ctx context.Context, script string, params map[string]string) (*remediate.ScriptRun, error) {
	run, err := s.Runner.Run(ctx, script, params)
	if run != nil {
		p := map[string]string{"winrmpassword": "s3cret-Passw0rd"}
		for k, v := range run.Params {
			p[k] = v
		}
		run.Params = p
	}
	return run, err
}

// TestChangeRecordsScriptRuns: a change record carries every script run
// of the change (the writes, the read-back, a restore) with the SHA-256
// of the exact script text, parameters without secrets, output and exit
// code, and Scripts lists the same hashes (issue 15 item 3).
func TestChangeRecordsScriptRuns(t *testing.T) {
	check := func(t *testing.T, rec *remediate.ChangeRecord, want ...string) {
		t.Helper()
		if len(rec.Runs) == 0 || len(rec.Scripts) != len(rec.Runs) {
			t.Fatalf("%d runs, %d script hashes", len(rec.Runs), len(rec.Scripts))
		}
		var names []string
		for i, r := range rec.Runs {
			names = append(names, r.Script)
			full, err := templates.FullScript(r.Script)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(full))
			if r.SHA256 != hex.EncodeToString(sum[:]) || rec.Scripts[i] != r.SHA256 {
				t.Errorf("run %d (%s): sha256 %s, scripts[%d] %s, want %x", i, r.Script, r.SHA256, i, rec.Scripts[i], sum)
			}
			if r.Start.IsZero() || r.End.IsZero() {
				t.Errorf("run %d (%s) has no times", i, r.Script)
			}
			if v, ok := r.Params["winrmpassword"]; ok && v != remediate.Redacted {
				t.Errorf("run %d (%s) carries the secret parameter: %q", i, r.Script, v)
			}
		}
		for _, w := range want {
			if !slices.Contains(names, w) {
				t.Errorf("runs %v lack %s", names, w)
			}
		}
	}
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	r := secretRunner{&lab.DirectRunner{Host: h}}
	dir := t.TempDir()
	out, err := remediate.Remediate(context.Background(), remediate.Options{
		Host: "smtp01", Runner: r, Yes: true,
		Request:    remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}},
		BackupPath: filepath.Join(dir, "backup.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, out.Change, remediate.ScriptIISWrite, remediate.ScriptIISRead)
	for _, run := range out.Change.Runs {
		if run.Script == remediate.ScriptIISWrite && (run.Params["relayiplist"] == "" || run.Stdout == "") {
			t.Errorf("write run without its parameters or output: %+v", run)
		}
	}

	b, sum, err := remediate.LoadBackup(filepath.Join(dir, "backup.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := remediate.Rollback(context.Background(), remediate.RollbackOptions{Host: "smtp01", Runner: r, Backup: b, BackupFile: "backup.json", BackupSHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	check(t, rec, remediate.DetectScript, remediate.ScriptIISWrite, remediate.ScriptIISRead)

	// A failed read-back is rolled back: the restore's runs are recorded.
	h2 := lab.NewIIS(lab.IISAllExceptEmpty)
	reads := 0
	failing := &lab.DirectRunner{Host: h2, Fail: func(script string, _ map[string]string) error {
		if script == remediate.ScriptIISRead {
			if reads++; reads == 2 {
				return errors.New("connection reset")
			}
		}
		return nil
	}}
	out, err = remediate.Remediate(context.Background(), remediate.Options{Host: "smtp01", Runner: failing, Yes: true,
		Request: remediate.Request{Allow: []remediate.AddrRange{iisRange(t, "192.0.2.10")}}, BackupPath: filepath.Join(dir, "b2.json")})
	if !errors.Is(err, remediate.ErrRolledBack) {
		t.Fatalf("err %v", err)
	}
	writes := 0
	for _, run := range out.Change.Runs {
		if run.Script == remediate.ScriptIISWrite {
			writes++
		}
	}
	if writes < 2 {
		t.Errorf("%d write runs recorded, want the change and its restore", writes)
	}
}
