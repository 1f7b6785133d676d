package remediate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWriteBackupNeverReplaces (tryout finding 7): a second backup under
// the same name fails with fs.ErrExist and the first stays as written,
// so its printed rollback command still works.
func TestWriteBackupNeverReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "relaylock-backup-127.0.0.1.json")
	first := &Backup{Schema: BackupSchema, Tool: "relaylock", Host: "127.0.0.1", Platform: PlatformIIS,
		Taken: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), Inspection: &Inspection{Host: "127.0.0.1"}, Plan: &Plan{Host: "127.0.0.1"}}
	sum, err := WriteBackup(p, first)
	if err != nil {
		t.Fatal(err)
	}
	second := *first
	second.Host = "other"
	if _, err := WriteBackup(p, &second); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second backup under the same name: %v, want fs.ErrExist", err)
	}
	b, got, err := LoadBackup(p)
	if err != nil || got != sum || b.Host != "127.0.0.1" {
		t.Errorf("first backup changed: host %q sha256 %s (want %s), %v", b.Host, got, sum, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("files left behind: %v", ents)
	}
}
