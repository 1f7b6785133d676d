package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/report/evidence"
)

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func rollbacksIn(t *testing.T, ev string) int {
	t.Helper()
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range b.Changes {
		if c.Kind == "rollback" {
			n++
		}
	}
	return n
}

// TestRollbackRefusesChangedBackup (tryout finding 6): a backup edited
// after remediate wrote it, as a copy or in place, is refused before the
// host is contacted, naming both hashes; so is one the evidence does not
// record; an exact copy is restored.
func TestRollbackRefusesChangedBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "bk.json")
	original := stateOf(t, h)
	if code, out, errOut := lr.run(labTestPassword, append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--evidence", ev, "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...)...); code != exitOK {
		t.Fatalf("remediate: exit %d\n%s\n%s", code, out, errOut)
	}
	recorded := fileSHA256(t, bk)
	data, _ := os.ReadFile(bk)
	edited := regexp.MustCompile(`"relay_ip_list": "[A-Z]+"`).ReplaceAllLiteral(data, []byte(`"relay_ip_list": "NULL"`))
	if bytes.Equal(edited, data) {
		t.Fatalf("no relay_ip_list to edit in the backup:\n%s", data)
	}
	remediated := stateOf(t, h)
	rollback := func(backup string, extra ...string) (int, string, string) {
		return lr.run(labTestPassword, append(append([]string{"rollback", "--backup", backup, "--no-retest"}, extra...), lr.winrmArgs()...)...)
	}

	// An edited copy, the tryout's case.
	tb := filepath.Join(lr.dir, "tb.json")
	if err := os.WriteFile(tb, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := rollback(tb, "--evidence", ev)
	if code != exitError || !strings.Contains(errOut, fileSHA256(t, tb)) || !strings.Contains(errOut, recorded) || !strings.Contains(errOut, "does not match the evidence") {
		t.Errorf("rollback of an edited copy: exit %d, want %d naming sha256 %s and %s\nstdout:\n%s\nstderr:\n%s", code, exitError, fileSHA256(t, tb), recorded, out, errOut)
	}
	if got := stateOf(t, h); got != remediated {
		t.Errorf("the host was changed by a refused rollback:\n%s\nwant\n%s", got, remediated)
	}
	if n := rollbacksIn(t, ev); n != 0 {
		t.Errorf("%d rollback record(s) in the evidence after a refused rollback", n)
	}

	// A backup the evidence does not record at all (its time changed too).
	var m map[string]any
	if err := json.Unmarshal(edited, &m); err != nil {
		t.Fatal(err)
	}
	m["taken"] = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	un, _ := json.MarshalIndent(m, "", "  ")
	ub := filepath.Join(lr.dir, "unrecorded.json")
	if err := os.WriteFile(ub, un, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = rollback(ub, "--evidence", ev)
	if code != exitError || !strings.Contains(errOut, "is not among the 1 backup(s) recorded") {
		t.Errorf("rollback of an unrecorded backup: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	if got := stateOf(t, h); got != remediated {
		t.Errorf("the host was changed by a refused rollback")
	}

	// An exact copy is the recorded backup: restored.
	cp := filepath.Join(lr.dir, "copy.json")
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := rollback(cp, "--evidence", ev); code != exitOK {
		t.Fatalf("rollback of an exact copy: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := stateOf(t, h); got != original {
		t.Errorf("state after rollback:\n%s\nwant\n%s", got, original)
	}

	// The original, edited in place.
	if err := os.WriteFile(bk, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = rollback(bk, "--evidence", ev)
	if code != exitError || !strings.Contains(errOut, recorded) {
		t.Errorf("rollback of a backup edited in place: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	if got := stateOf(t, h); got != original {
		t.Errorf("the host was changed by a refused rollback")
	}
	// Without --evidence nothing can be checked, and rollback says so.
	if err := os.WriteFile(bk, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := rollback(bk); code != exitOK || !strings.Contains(errOut, "is not checked") {
		t.Errorf("rollback without --evidence: exit %d, want %d and a note that the hash is not checked\n%s\n%s", code, exitOK, out, errOut)
	}
}

// TestRemediateNeverOverwritesBackup (tryout finding 7): an explicit
// --backup naming an existing file is refused before anything is read
// or changed.
func TestRemediateNeverOverwritesBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	bk := filepath.Join(lr.dir, "bl.json")
	const precious = `{"the first backup": true}`
	if err := os.WriteFile(bk, []byte(precious), 0o600); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, h)
	for _, cmd := range [][]string{
		append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never", "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...),
		{"fix", "example.invalid", "--allow", "192.0.2.10", "--yes", "--backup", bk, "--evidence", filepath.Join(lr.dir, "fixev.json"), "--dns-server", "127.0.0.1:1", "--timeout", "1s"},
	} {
		code, out, errOut := lr.run(labTestPassword, cmd...)
		if code != exitError || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "never overwrites a backup") {
			t.Errorf("%s --backup EXISTING: exit %d, want %d saying so\nstdout:\n%s\nstderr:\n%s", cmd[0], code, exitError, out, errOut)
		}
		if strings.Contains(errOut, "probing") || strings.Contains(errOut, "auditing") {
			t.Errorf("%s probed before refusing the backup name:\n%s", cmd[0], errOut)
		}
	}
	if b, _ := os.ReadFile(bk); string(b) != precious {
		t.Errorf("the existing backup was replaced: %q", b)
	}
	if got := stateOf(t, h); got != before {
		t.Errorf("the host was changed")
	}
	// Without --backup the name is the run's own, with the WinRM port.
	if code, out, errOut := lr.run(labTestPassword, append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--evidence", filepath.Join(lr.dir, "ev.json")}, lr.winrmArgs()...), lr.probeArgs()...)...); code != exitOK {
		t.Fatalf("remediate: exit %d\n%s\n%s", code, out, errOut)
	}
	names, _ := filepath.Glob(filepath.Join(lr.dir, "relaylock-backup-*.json"))
	want := regexp.MustCompile(`^relaylock-backup-` + regexp.QuoteMeta(lr.lab.WinRMHost) + `-` + regexp.QuoteMeta(strings.TrimSpace(itoa(lr.lab.WinRMPort))) + `-\d{8}T\d{6}Z-[0-9a-f]{8}\.json$`)
	if len(names) != 1 || !want.MatchString(filepath.Base(names[0])) {
		t.Errorf("default backup names %v, want one matching %s", names, want)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestRemediateTwoHostsOneAddress (tryout finding 7): two hosts reached
// through one address on different WinRM ports, remediated at the same
// moment into one directory, keep a backup each, and each backup's
// rollback restores its host.
func TestRemediateTwoHostsOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	h1, h2 := lab.NewIIS(lab.IISAllExceptEmpty), lab.NewIIS(lab.IISAllExceptEmpty)
	lr1, lr2 := startLab(t, h1), startLab(t, h2)
	if lr1.lab.WinRMHost != lr2.lab.WinRMHost {
		t.Fatalf("the labs listen on %s and %s, want one address", lr1.lab.WinRMHost, lr2.lab.WinRMHost)
	}
	original := stateOf(t, h1)
	ev := filepath.Join(lr1.dir, "ev.json")
	type result struct {
		code     int
		out, err string
	}
	// One after the other, within the same second: the CLI cannot run
	// twice at once in one process (urfave/cli's global help flag), and
	// the names must differ whatever the clock says.
	res := make([]result, 2)
	for i, lr := range []*labRun{lr1, lr2} {
		code, out, errOut := lr.run(labTestPassword, append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
			"--no-retest", "--evidence", ev}, lr.winrmArgs()...), lr.probeArgs()...)...)
		res[i] = result{code, out, errOut}
	}
	var cmds []string
	for i, r := range res {
		if r.code != exitOK {
			t.Fatalf("remediate %d: exit %d\n%s\n%s", i, r.code, r.out, r.err)
		}
		m := regexp.MustCompile(`--backup (\S+)`).FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("remediate %d printed no rollback command:\n%s", i, r.out)
		}
		cmds = append(cmds, m[1])
	}
	if cmds[0] == cmds[1] {
		t.Fatalf("both hosts' backups are %s", cmds[0])
	}
	for i, lr := range []*labRun{lr1, lr2} {
		if code, out, errOut := lr.run(labTestPassword, append([]string{"rollback", "--backup", cmds[i], "--evidence", ev, "--no-retest"}, lr.winrmArgs()...)...); code != exitOK {
			t.Errorf("rollback %d from %s: exit %d\n%s\n%s", i, cmds[i], code, out, errOut)
		}
	}
	for i, h := range []lab.Host{h1, h2} {
		if got := stateOf(t, h); got != original {
			t.Errorf("host %d after its rollback:\n%s\nwant\n%s", i, got, original)
		}
	}
}
