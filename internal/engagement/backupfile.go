package engagement

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errBackupExists: relaylock never overwrites a backup. A backup may be
// the only copy of a host's prior state, and the rollback command printed
// for it names the file.
var errBackupExists = errors.New("relaylock never overwrites a backup")

// backupPath names the backup of the host w reaches for this run and checks that
// nothing has that name yet (the write itself is O_EXCL too:
// remediate.WriteBackup).
//
// The default name is unique to the run: host, WinRM port (two hosts
// behind one address, as with port forwarding, differ only there), time
// to the second and a random suffix. An explicit --backup is used as
// given for the first host of the run; fix gives each further host the
// name with "-HOST-PORT" before the extension, since one file cannot hold
// two hosts' backups.
func (f *fixer) backupPath(w WinRMOptions) (string, error) {
	host := w.Host
	port := winrmPort(w)
	explicit := f.change.Backup
	if explicit == "" {
		for range 8 {
			p := filepath.Join(f.backupDir, fmt.Sprintf("relaylock-backup-%s-%s-%s-%s.json",
				safeName(host), port, time.Now().UTC().Format("20060102T150405Z"), randomSuffix()))
			if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
				return p, nil
			}
		}
		return "", fmt.Errorf("cannot find a free backup name in %s", f.backupDir)
	}
	p := explicit
	if f.backupsUsed[p] {
		ext := filepath.Ext(p)
		p = strings.TrimSuffix(p, ext) + "-" + safeName(host) + "-" + port + ext
	}
	if f.backupsUsed == nil {
		f.backupsUsed = map[string]bool{}
	}
	f.backupsUsed[explicit], f.backupsUsed[p] = true, true
	if f.change.DryRun {
		return p, nil // nothing is written
	}
	if err := backupFree(p); err != nil {
		return "", err
	}
	return p, nil
}

// backupFree refuses a backup path that exists (as anything: a file, a
// directory, a link, a device).
func backupFree(p string) error {
	if _, err := os.Lstat(p); err == nil {
		return WithCode(ExitError, fmt.Errorf("--backup %s already exists: %w (it may be the only copy of a host's prior state); name a new file, or leave out --backup for a unique name", p, errBackupExists))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return WithCode(ExitError, fmt.Errorf("--backup %s: %w", p, err))
	}
	return nil
}

// winrmPort is the WinRM port the host is reached on, as a string for
// file names.
func winrmPort(w WinRMOptions) string {
	if p := w.Port; p != 0 {
		return strconv.Itoa(p)
	}
	if !w.useHTTPS() {
		return "5985"
	}
	return "5986"
}

func randomSuffix() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported systems; the nanoseconds
		// still make the name unique to this process in practice.
		return strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	}
	return hex.EncodeToString(b)
}
