package evidence

import (
	"bytes"
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

// TestUpdateRefusesModified: Update re-reads the file under its lock and
// refuses to re-seal content changed after sealing (issue 15 item 1).
func TestUpdateRefusesModified(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.json")
	if err := Save(p, sample()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	forged := bytes.Replace(data, []byte(`"all except: (none)"`), []byte(`"only: 10.0.0.1"`), 1)
	os.WriteFile(p, forged, 0o600)
	err := Update(context.Background(), p, func(b *Bundle) error { return nil })
	var mod *ModifiedError
	if !errors.Is(err, ErrModified) || !errors.As(err, &mod) {
		t.Fatalf("Update of forged evidence: %v", err)
	}
	if got := mod.Result.Modified(); len(got) != 1 || got[0] != "inspections[0]" {
		t.Errorf("modified %q, want [inspections[0]]", got)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, forged) {
		t.Error("forged evidence was re-sealed")
	}
	if _, _, err := LoadVerified(p); !errors.Is(err, ErrModified) {
		t.Errorf("LoadVerified: %v", err)
	}
	if err := Preflight(p); !errors.Is(err, ErrModified) {
		t.Errorf("Preflight: %v", err)
	}
	if err := Preflight(filepath.Join(filepath.Dir(p), "new.json")); err != nil {
		t.Errorf("Preflight of a new file: %v", err)
	}
	if err := Preflight(filepath.Join(filepath.Dir(p), "missing", "new.json")); err == nil {
		t.Error("Preflight of a file in a missing directory passed")
	}
}

// TestSignRefusesModified: a signature is never made over evidence that
// does not verify.
func TestSignRefusesModified(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "e.json")
	key := filepath.Join(dir, "k")
	if _, err := GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	if err := Save(p, sample()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(data, []byte(`"alice"`), []byte(`"mallory"`), 1), 0o600)
	if _, err := Sign(p, "", key); !errors.Is(err, ErrModified) {
		t.Fatalf("Sign of modified evidence: %v", err)
	}
	if _, err := os.Stat(SignaturePath(p)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a signature was written")
	}
}

// TestLockLiveHolder: a lock held by a live process is reported at once
// by Preflight, naming the holder; Update's wait ends with ctx (Ctrl-C)
// and names the holder too (issue 15 item 4).
func TestLockLiveHolder(t *testing.T) {
	host, _ := os.Hostname()
	p := filepath.Join(t.TempDir(), "e.json")
	content := fmt.Sprintf("pid %d host %s since 2026-01-01T00:00:00Z\n", os.Getppid(), host)
	os.WriteFile(p+".lock", []byte(content), 0o600)
	start := time.Now()
	err := Preflight(p)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf(" %d ", os.Getppid())) || !strings.Contains(err.Error(), host) {
		t.Fatalf("Preflight: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Preflight took %s", d)
	}
	other := "pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"
	os.WriteFile(p+".lock", []byte(other), 0o600)
	if err := Preflight(p); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid 4242 on host other-host.example") {
		t.Fatalf("Preflight, other host: %v", err)
	}

	old := LockWait
	LockWait = time.Hour
	defer func() { LockWait = old }()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = Update(ctx, p, func(*Bundle) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "other-host.example") {
		t.Fatalf("Update with a cancelled context: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the wait ignored the context: %s", d)
	}
}

// TestLockRun: the journal's run lock never waits, is not freed by age,
// and is taken over from a dead process of this host.
func TestLockRun(t *testing.T) {
	lp := filepath.Join(t.TempDir(), "j.lock")
	unlock, err := LockRun(lp)
	if err != nil {
		t.Fatal(err)
	}
	// Held by this process: a second taker fails at once.
	if _, err := LockRun(lp); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second LockRun: %v", err)
	}
	old := time.Now().Add(-24 * time.Hour)
	os.Chtimes(lp, old, old)
	if _, err := LockRun(lp); !errors.Is(err, ErrLocked) {
		t.Fatalf("an old lock of a live run was taken: %v", err)
	}
	unlock()
	if _, err := os.Stat(lp); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("unlock left the lock")
	}
	// A run killed with -9 left its lock: the next run takes it over.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	os.WriteFile(lp, []byte(fmt.Sprintf("pid %d host %s since 2026-01-01T00:00:00Z\n", cmd.Process.Pid, host)), 0o600)
	unlock, err = LockRun(lp)
	if err != nil {
		t.Fatalf("lock of a dead run not taken over: %v", err)
	}
	unlock()
}

// TestUpdateRemovesStaleTemps: a temporary file left by a writer killed
// between create and rename (kill -9) is removed at the next save; other
// files are not (issue 15 item 5).
func TestUpdateRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "e.json")
	stale := filepath.Join(dir, ".e.json.tmp-12345")
	other := filepath.Join(dir, ".other.json.tmp-1")
	for _, f := range []string{stale, other} {
		os.WriteFile(f, []byte("half a file"), 0o600)
	}
	if err := Update(context.Background(), p, func(*Bundle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temporary file left")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another file's temporary file was removed")
	}
}

// TestUpdateThroughSymlink: a symlinked evidence path is written through
// to the link's target; the link stays a link, and the lock sits beside
// the target (issue 15 item 5). A dangling link is refused, by Update and
// Preflight, and nothing is created where it points (tryout 9: a link
// planted in a shared directory would otherwise let a run create a file
// of the planter's choosing).
func TestUpdateThroughSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "e.json")
	os.Mkdir(filepath.Dir(real), 0o700)
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	add := func(path string, i int) error {
		return Update(context.Background(), path, func(b *Bundle) error {
			b.Log = append(b.Log, LogEntry{Time: t0, Step: "audit", Message: fmt.Sprint(i)})
			return nil
		})
	}
	for name, err := range map[string]error{"Update": add(link, 0), "Preflight": Preflight(link)} {
		if !errors.Is(err, ErrDanglingLink) || !strings.Contains(err.Error(), real) {
			t.Errorf("%s through a dangling link: %v, want ErrDanglingLink naming %s", name, err, real)
		}
	}
	if _, err := os.Lstat(real); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dangling link's target was created: %v", err)
	}
	if err := add(real, 0); err != nil { // the file exists: the link now writes through
		t.Fatal(err)
	}
	if err := add(link, 1); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	b, r, err := LoadVerified(real)
	if err != nil || len(b.Log) != 2 {
		t.Fatalf("target: %v %+v", err, r)
	}
	if got, _ := Resolve(link); got != real {
		t.Errorf("Resolve %s, want %s", got, real)
	}
}
