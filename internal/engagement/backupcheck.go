package engagement

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// errBackupMismatch: the backup given to rollback is not byte for byte a
// backup the evidence recorded, so the state it holds may never have
// existed on the host.
var errBackupMismatch = errors.New("the backup does not match the evidence")

// checkBackupRecorded runs before rollback connects to the host: with
// --evidence, the backup's SHA-256 (of the bytes just parsed, so nothing
// can change between the check and the restore) must be the SHA-256 of a
// backup the evidence recorded when remediate wrote it (backups[]).
// A backup the evidence records under the same file or the same host and
// time with another hash was changed after it was written; one it does
// not record at all is refused too, since nothing vouches for it.
//
// Without --evidence (or with an evidence file that does not exist yet)
// there is nothing to check against: a backup holds no hash of itself. A
// note on stderr says so.
func checkBackupRecorded(w io.Writer, evPath, backupPath string, b *remediate.Backup, sum string) error {
	if evPath != "" {
		if _, err := os.Stat(evPath); errors.Is(err, fs.ErrNotExist) {
			evPath = ""
		}
	}
	if evPath == "" {
		fmt.Fprintf(w, "relaylock: note: the backup's SHA-256 %s is not checked: give --evidence with the evidence file remediate wrote to refuse a backup changed since\n", sum)
		return nil
	}
	bb, err := evidence.Load(evPath)
	if err != nil {
		return err
	}
	var forIt []string
	for i, ref := range bb.Backups {
		if strings.EqualFold(ref.SHA256, sum) {
			return nil
		}
		same := sameRecordedFile(ref.File, evPath, backupPath)
		if ref.Backup != nil && ref.Backup.Host == b.Host && ref.Backup.Taken.Equal(b.Taken) {
			same = true
		}
		if same {
			forIt = append(forIt, fmt.Sprintf("backups[%d] (%s): sha256 %s", i, ref.File, ref.SHA256))
		}
	}
	if len(forIt) > 0 {
		return WithCode(ExitError, fmt.Errorf("%w: %s has SHA-256 %s, but %s recorded for it:\n  %s\nthe file was changed after remediate wrote it; nothing was restored (the host was not contacted)",
			errBackupMismatch, backupPath, sum, evPath, strings.Join(forIt, "\n  ")))
	}
	return WithCode(ExitError, fmt.Errorf("%w: %s (SHA-256 %s, host %s, taken %s) is not among the %d backup(s) recorded in %s; nothing was restored (the host was not contacted)\nhint: give --evidence the evidence file remediate wrote with this backup (a remediate stopped before it recorded its backup there changed nothing)",
		errBackupMismatch, backupPath, sum, b.Host, b.Taken.UTC().Format("2006-01-02T15:04:05Z"), len(bb.Backups), evPath))
}

// sameRecordedFile reports whether the backup file recorded as file (as
// written; relative names are tried as given and beside the evidence, as
// verify does) is the file at path.
func sameRecordedFile(file, evPath, path string) bool {
	if file == "" {
		return false
	}
	dir := filepath.Dir(evPath)
	cands := []string{file}
	if !filepath.IsAbs(file) {
		cands = append(cands, filepath.Join(dir, file))
	}
	cands = append(cands, filepath.Join(dir, filepath.Base(file)))
	for _, c := range cands {
		if sameFile(c, path) {
			return true
		}
	}
	return false
}

// sameFile reports whether a and b both exist and are the same file
// (following links).
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
