package engagement

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupNamesUnique (tryout finding 7): two hosts behind one address
// (different WinRM ports) in the same second get different default
// backup names, and so do two runs against one host; fix names a second
// host's backup after it when a backup file was given.
func TestBackupNamesUnique(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for _, run := range []struct {
		w      WinRMOptions
		backup string
	}{
		{WinRMOptions{Port: 15986, HTTPS: true}, ""}, {WinRMOptions{Port: 16086, HTTPS: true}, ""}, {WinRMOptions{HTTPS: true}, ""},
		{WinRMOptions{HTTPS: true, HTTP: true}, ""},
		{WinRMOptions{Port: 15986, HTTPS: true}, filepath.Join(dir, "bl.json")},
	} {
		f := &fixer{backupDir: dir, change: ChangeOptions{Backup: run.backup}}
		for _, host := range []string{"127.0.0.1", "127.0.0.1", "mail.example"} {
			w := run.w
			w.Host = host
			p, err := f.backupPath(w)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, p)
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("backup name %s given twice", n)
		}
		seen[n] = true
	}
	for i, want := range []string{"-127.0.0.1-15986-", "-127.0.0.1-15986-", "-mail.example-15986-", "-127.0.0.1-16086-", "", "", "-127.0.0.1-5986-", "", "", "-127.0.0.1-5985-"} {
		if want != "" && !strings.Contains(names[i], want) {
			t.Errorf("name %d %s does not contain %q", i, names[i], want)
		}
	}
	if got := names[12:]; filepath.Base(got[0]) != "bl.json" || filepath.Base(got[1]) != "bl-127.0.0.1-15986.json" || filepath.Base(got[2]) != "bl-mail.example-15986.json" {
		t.Errorf("explicit backup for three hosts: %v", got)
	}
}
