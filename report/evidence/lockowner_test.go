package evidence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestUpdateTakesOverLockOfDeadProcess: a lock left by a relaylock that
// was killed while saving (kill -9) does not block the next run; a lock
// whose holder runs, or that another host wrote, still does.
func TestUpdateTakesOverLockOfDeadProcess(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		t.Skip("no process check on " + runtime.GOOS)
	}
	old := LockWait
	LockWait = 300 * time.Millisecond
	defer func() { LockWait = old }()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	// A process that has ended: its id is (almost surely) unused now.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	tests := []struct {
		name    string
		content string
		locked  bool
	}{
		{"dead process on this host", fmt.Sprintf("pid %d host %s since 2026-01-01T00:00:00Z\n", dead, host), false},
		{"live process on this host", fmt.Sprintf("pid %d host %s since 2026-01-01T00:00:00Z\n", os.Getppid(), host), true},
		{"dead process id on another host", fmt.Sprintf("pid %d host other-%s since 2026-01-01T00:00:00Z\n", dead, host), true},
		{"old format without host", fmt.Sprintf("pid %d since 2026-01-01T00:00:00Z\n", dead), true},
		{"garbage", "\x00\xff", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "e.json")
			if err := os.WriteFile(p+".lock", []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Update(context.Background(), p, func(*Bundle) error { return nil })
			if tt.locked {
				if !errors.Is(err, ErrLocked) {
					t.Fatalf("err %v, want ErrLocked", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			// Success is the proof that the dead holder's lock was taken
			// over: a lock still counted as held ends in ErrLocked at the
			// deadline. (No timing assertion: under -race on a loaded
			// machine one Update can take longer than LockWait.)
			if _, err := os.Stat(p + ".lock"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("lock not released: %v", err)
			}
		})
	}
	// What a running relaylock writes names itself and this host.
	if c := lockContent(); !strings.Contains(c, fmt.Sprintf("pid %d host %s ", os.Getpid(), host)) || lockOwnerGone([]byte(c)) {
		t.Errorf("lockContent %q", c)
	}
}

// TestDescribeHolderChecksProcess: a lock naming a live process of this
// host that is not relaylock (pid 1 is init) is not called "relaylock pid
// 1" (tryout 15); where the OS tells the process's name it is named, and a
// process running this program is a relaylock.
func TestDescribeHolderChecksProcess(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	lockOf := func(pid int, host string) []byte {
		return []byte(fmt.Sprintf("pid %d host %s since 2026-01-01T00:00:00Z\n", pid, host))
	}
	init := describeHolder(lockOf(1, host))
	if strings.Contains(init, "relaylock pid 1") || !strings.Contains(init, "process 1 ") {
		t.Errorf("pid 1: %q", init)
	}
	if _, ok := processName(1); ok && !strings.Contains(init, "which is not relaylock") {
		t.Errorf("pid 1 (name known): %q", init)
	}
	if _, ok := processName(os.Getpid()); ok {
		if self := describeHolder(lockOf(os.Getpid(), host)); !strings.HasPrefix(self, "relaylock pid ") {
			t.Errorf("this program: %q", self)
		}
	} else if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		t.Errorf("no process name on %s", runtime.GOOS)
	}
	// Another host's process cannot be checked; its lock file was
	// written by relaylock (nothing else writes that format).
	if other := describeHolder(lockOf(1, "other-"+host)); !strings.Contains(other, "pid 1 on host other-"+host) {
		t.Errorf("another host: %q", other)
	}
}
