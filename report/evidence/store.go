package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/internal/atomicfile"
)

// Errors returned by Load and Update; test them with errors.Is.
var (
	// ErrMalformed: the file is not a JSON evidence document.
	ErrMalformed = errors.New("malformed evidence file")
	// ErrWrongSchema: the file is JSON but not a relaylock evidence file.
	ErrWrongSchema = errors.New("not a relaylock evidence file")
	// ErrFutureSchema: the file was written by a newer relaylock with a
	// schema major version this build does not know.
	ErrFutureSchema = errors.New("evidence file has a newer schema version")
	// ErrNewerFields: Update refuses to rewrite a file that holds fields
	// this build does not know, since saving would drop them.
	ErrNewerFields = errors.New("evidence file has fields this relaylock does not know")
	// ErrLocked: another relaylock process holds the file's lock.
	ErrLocked = errors.New("evidence file is locked")
)

const schemaPrefix = "relaylock.evidence/v"

// schemaMajor is the major version of Schema.
const schemaMajor = 1

// now is the clock; tests replace it.
var now = time.Now

// New returns an empty bundle with a fresh report id made from the date and
// 32 random bits (crypto/rand).
func New(t time.Time) *Bundle {
	var r [4]byte
	rand.Read(r[:]) // never returns an error since Go 1.24 (it aborts the program instead)
	t = t.UTC()
	return &Bundle{
		Schema:  Schema,
		ID:      "RL-" + t.Format("20060102") + "-" + hex.EncodeToString(r[:]),
		Created: t,
		Updated: t,
	}
}

// CurrentTool describes this build.
func CurrentTool(version, commit string) Tool {
	return Tool{
		Name:      "relaylock",
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
}

// SHA256File returns the lower-case hex SHA-256 of the file's bytes.
func SHA256File(path string) (string, error) {
	f, err := atomicfile.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Load reads an evidence file strictly (see Parse). It does not check the
// seal: use LoadVerified for evidence that is about to be shown or added
// to.
func Load(path string) (*Bundle, error) {
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read evidence: %w", err)
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Parse decodes an evidence document strictly (strict.go): it refuses a
// different schema name or a newer major version (ErrWrongSchema,
// ErrFutureSchema), fields this build does not know (ErrNewerFields),
// keys equal ignoring case, keys that match a field only ignoring case,
// invalid strings and inexact numbers (ErrMalformed).
func Parse(data []byte) (*Bundle, error) {
	return parse(data, true)
}

// parse is Parse; without strict, fields this build does not know are
// tolerated (verify checks files from newer builds from their bytes), but
// every other strict rule holds.
func parse(data []byte, strict bool) (*Bundle, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil {
			err = errNotJSON
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, describeJSONError(data, err))
	}
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, describeJSONError(data, err))
	}
	if head.Schema == nil {
		return nil, fmt.Errorf("%w: no \"schema\" field", ErrWrongSchema)
	}
	major, ok := parseSchema(*head.Schema)
	if !ok {
		return nil, fmt.Errorf("%w: schema %q", ErrWrongSchema, *head.Schema)
	}
	if major > schemaMajor {
		return nil, fmt.Errorf("%w: %q (this relaylock reads %s); upgrade relaylock", ErrFutureSchema, *head.Schema, Schema)
	}
	var b Bundle
	if err := checkStrict(data, &b, !strict); err != nil {
		if errors.Is(err, ErrNewerFields) {
			// Both happen: a newer relaylock added fields, or someone
			// added them by hand after sealing (verify names them as a
			// MISMATCH). Say both; do not send a tamperer's victim to
			// upgrade.
			return nil, fmt.Errorf("%w: either a newer relaylock wrote it (then upgrade relaylock), or it was edited after sealing (verify names the fields)", err)
		}
		return nil, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, describeJSONError(data, err))
	}
	return &b, nil
}

// parseSchema returns the major version of a "relaylock.evidence/vN" name.
func parseSchema(s string) (int, bool) {
	v, ok := strings.CutPrefix(s, schemaPrefix)
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(v, '.'); i >= 0 { // "v1.2" is a minor of v1
		v = v[:i]
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// describeJSONError adds the line and column to a syntax error.
func describeJSONError(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := 1, 1
		for _, c := range data[:min(int(se.Offset), len(data))] {
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Sprintf("line %d, column %d: %v", line, col, err)
	}
	return err.Error()
}

// Marshal seals b and returns its deterministic JSON encoding: struct field
// order, sorted map keys, two-space indent, final newline.
func Marshal(b *Bundle) ([]byte, error) {
	var buf bytes.Buffer
	if err := encodeBundle(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save seals b and writes it atomically to path with mode 0600 (temporary
// file in the same directory, fsync, rename, directory fsync). It does not
// take the lock; use Update to add to a file other processes may write.
// The file is written as it is encoded, section by section (encodeBundle),
// so a large bundle is never held in memory a second time as JSON.
func Save(path string, b *Bundle) error {
	err := atomicfile.Write(path, 0o600, func(w io.Writer) error {
		return encodeBundle(w, b)
	})
	if err != nil {
		return fmt.Errorf("save evidence: %w", err)
	}
	return nil
}

// Update adds to the evidence file at path: it takes the file's lock
// (path + ".lock"), loads the file or starts a new bundle if it does not
// exist, checks that it still matches its seal, applies fn, sets Updated,
// and saves atomically. If fn returns an error nothing is written.
//
// A symbolic link at path is followed: the link's target is read, locked
// and replaced, and the link stays (Resolve).
//
// Guarantee: while every writer goes through Update, no section is lost.
// Writers are serialised by the lock file, and each one re-reads the file
// under the lock, so two concurrent relaylock runs writing the same file
// both keep their sections. The lock is a file created with O_EXCL, which
// works on every OS and file system relaylock supports; it names its
// holder (lockowner.go). A lock whose holder is a process of this host
// that has ended, or older than StaleLock, is taken over. Update waits up
// to LockWait for a live holder (one save of a large file takes seconds),
// or until ctx is done, then returns ErrLocked naming the holder.
//
// Update refuses to rewrite a file that does not verify (ErrModified, a
// *ModifiedError), a file it cannot read strictly (ErrMalformed), and one
// holding fields this build does not know (ErrNewerFields), since the
// rewrite would re-seal forged content or drop the fields.
func Update(ctx context.Context, path string, fn func(*Bundle) error) error {
	path, err := Resolve(path)
	if err != nil {
		return err
	}
	unlock, err := lock(ctx, path)
	if err != nil {
		return err
	}
	defer unlock()
	var b *Bundle
	data, err := atomicfile.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b = New(now())
	case err != nil:
		return fmt.Errorf("read evidence: %w", err)
	default:
		if b, _, err = verifyData(path, data); err != nil {
			return err
		}
		data = nil // the bundle is decoded; let a large file's bytes go
	}
	if err := fn(b); err != nil {
		return err
	}
	b.Updated = now().UTC()
	removeStaleTemps(path)
	return Save(path, b)
}

// ErrDanglingLink: the evidence path is a symbolic link to nothing.
// relaylock writes through a link only to an existing file; it never
// creates the file a link points to (a link planted in a shared directory
// would choose where the run writes).
var ErrDanglingLink = errors.New("symbolic link to a file that does not exist")

// Resolve returns the file an evidence path names: path itself, or, for
// a symbolic link, the existing file it points to; a dangling link is
// ErrDanglingLink. Writing through the link keeps the link and lets the
// lock and journal sit beside the real file, so that runs naming the link
// and runs naming the target share one lock.
func Resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		return real, nil
	}
	dest, rerr := os.Readlink(path)
	if rerr != nil {
		return "", fmt.Errorf("evidence %s: %w", path, rerr)
	}
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(filepath.Dir(path), dest)
	}
	why := dest
	if !errors.Is(err, fs.ErrNotExist) {
		why += ": " + err.Error() // a loop, a directory that cannot be searched
	}
	return "", fmt.Errorf("%s is a %w (%s); refusing to create it through the link: give the target's path, or create the file first", path, ErrDanglingLink, why)
}

// removeStaleTemps removes the temporary files a writer of path left when
// it was killed between creating and renaming one (atomicfile names them
// ".NAME.tmp-*"). Update calls it under the lock, when no other writer of
// path can be running.
func removeStaleTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + base + ".tmp-"
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Preflight checks, before a command does any work, that it will be able
// to add to the evidence file at path: a file that exists must verify
// (LoadVerified: a *ModifiedError, ErrMalformed, ErrNewerFields...), and
// its lock must not be held by a live relaylock, which fails at once
// with ErrLocked naming the holder (a run that would wait for it could
// only lose its result). A missing file is fine if its directory exists.
func Preflight(path string) error {
	path, err := Resolve(path)
	if err != nil {
		return err
	}
	if holder, held := lockHolder(path + ".lock"); held {
		return fmt.Errorf("%w: %s is held by %s; wait for that run to end (if no relaylock is running there, remove the lock file)", ErrLocked, path+".lock", holder)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// A new file: its directory must exist, or the run's result could
		// not be saved at the end.
		dir := filepath.Dir(path)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("evidence %s: directory %s does not exist", path, dir)
		}
		return nil
	}
	// Reading a FIFO would block; a device or directory is no evidence.
	if err := atomicfile.Replaceable(path); err != nil {
		return err // names the path and what it is; callers say "evidence"
	}
	_, _, err = LoadVerified(path)
	return err
}

// Lock timing; see Update.
var (
	LockWait  = 10 * time.Second
	StaleLock = 10 * time.Minute
)

// inProcess serialises Updates of one file within this process, so that
// its goroutines queue here instead of polling the lock file.
var inProcess sync.Map // path → *sync.Mutex

// lock takes path's lock file and returns the function that releases it.
func lock(ctx context.Context, path string) (func(), error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	mv, _ := inProcess.LoadOrStore(abs, &sync.Mutex{})
	mu := mv.(*sync.Mutex)
	mu.Lock()
	lp := path + ".lock"
	deadline := time.Now().Add(LockWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f, err := os.OpenFile(lp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprint(f, lockContent())
			f.Close()
			return func() { os.Remove(lp); mu.Unlock() }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			mu.Unlock()
			return nil, fmt.Errorf("lock evidence: %w", err)
		}
		holder, held := lockHolder(lp)
		if !held {
			continue // removed, or taken over from a dead holder
		}
		if time.Now().After(deadline) {
			mu.Unlock()
			return nil, fmt.Errorf("%w: %s is held by %s (waited %s); if no relaylock is running there, remove the lock file", ErrLocked, lp, holder, LockWait)
		}
		select {
		case <-ctx.Done():
			mu.Unlock()
			return nil, fmt.Errorf("waiting for %s (held by %s): %w", lp, holder, ctx.Err())
		case <-tick.C:
		}
	}
}

// lockHolder reports whether the lock file lp is held by a live process
// and describes the holder. A lock older than StaleLock, or left by a
// process of this host that no longer runs (killed while saving), is
// removed and reported as not held.
func lockHolder(lp string) (string, bool) {
	fi, err := os.Stat(lp)
	if err != nil {
		return "", false
	}
	holder, rerr := atomicfile.ReadFile(lp)
	if time.Since(fi.ModTime()) > StaleLock {
		if again, _ := atomicfile.ReadFile(lp); rerr == nil && bytes.Equal(again, holder) && os.Remove(lp) == nil {
			return "", false // left by a crashed process
		}
	}
	if rerr == nil && lockOwnerGone(holder) {
		// Remove it only if it still is that lock.
		if again, _ := atomicfile.ReadFile(lp); bytes.Equal(again, holder) && os.Remove(lp) == nil {
			return "", false
		}
	}
	if rerr != nil {
		return "an unknown process", true
	}
	return describeHolder(holder), true
}

// LockRun takes the lock file lp for a whole run (the audit journal's),
// not for one save: it never waits, and fails at once with ErrLocked
// naming the holder when a live process holds it. A lock left by a
// process of this host that has ended is taken over; age alone never
// frees it (a run may last hours), so a lock from another host stays
// until its owner or the operator removes it.
func LockRun(lp string) (func(), error) {
	for range 3 {
		f, err := os.OpenFile(lp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprint(f, lockContent())
			f.Close()
			return func() { os.Remove(lp) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", lp, err)
		}
		holder, rerr := atomicfile.ReadFile(lp)
		if rerr == nil && lockOwnerGone(holder) {
			if again, _ := atomicfile.ReadFile(lp); bytes.Equal(again, holder) && os.Remove(lp) == nil {
				continue
			}
		}
		if rerr != nil {
			holder = nil
		}
		return nil, fmt.Errorf("%w: %s is held by %s", ErrLocked, lp, describeHolder(holder))
	}
	return nil, fmt.Errorf("%w: %s keeps changing hands", ErrLocked, lp)
}
