package evidence

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
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
	ErrLocked = errors.New("evidence file is locked by another relaylock process")
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
	f, err := os.Open(path)
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

// Load reads and checks an evidence file. It tolerates fields it does not
// know (a newer minor version) but refuses a different schema name or a
// newer major version.
func Load(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read evidence: %w", err)
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Parse decodes an evidence document (see Load).
func Parse(data []byte) (*Bundle, error) {
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
// exist, applies fn, sets Updated, and saves atomically. If fn returns an
// error nothing is written.
//
// Guarantee: while every writer goes through Update, no section is lost.
// Writers are serialised by the lock file, and each one re-reads the file
// under the lock, so two concurrent relaylock runs writing the same file
// both keep their sections. The lock is a file created with O_EXCL, which
// works on every OS and file system relaylock supports. A lock older than
// StaleLock is taken to be left by a crashed process and removed. Update
// waits up to LockWait for the lock, then returns ErrLocked.
//
// Update refuses (ErrNewerFields) to rewrite a file holding fields this
// build does not know, since the rewrite would drop them.
func Update(path string, fn func(*Bundle) error) error {
	unlock, err := lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	var b *Bundle
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b = New(now())
	case err != nil:
		return fmt.Errorf("read evidence: %w", err)
	default:
		if b, err = parseKnown(data); err != nil {
			if b, err = Parse(data); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := checkKnownFields(data); err != nil {
				return err
			}
		}
		data = nil // the bundle is decoded; let a large file's bytes go
	}
	if err := fn(b); err != nil {
		return err
	}
	b.Updated = now().UTC()
	return Save(path, b)
}

// parseKnown is Parse and checkKnownFields in one strict decode, for the
// common case of a file this build wrote. On any error, Update runs the
// two for their exact errors.
func parseKnown(data []byte) (*Bundle, error) {
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil || head.Schema == nil {
		return nil, ErrMalformed
	}
	if major, ok := parseSchema(*head.Schema); !ok || major > schemaMajor {
		return nil, ErrWrongSchema
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF { // as Unmarshal, refuse trailing data
		return nil, ErrMalformed
	}
	return &b, nil
}

// checkKnownFields decodes strictly to find fields a newer build added.
func checkKnownFields(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return fmt.Errorf("%w: %v; upgrade relaylock", ErrNewerFields, err)
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// Lock timing; see Update.
var (
	LockWait  = 30 * time.Second
	StaleLock = 10 * time.Minute
)

// lock takes path's lock file and returns the function that releases it.
func lock(path string) (func(), error) {
	lp := path + ".lock"
	deadline := time.Now().Add(LockWait)
	for {
		f, err := os.OpenFile(lp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprint(f, lockContent())
			f.Close()
			return func() { os.Remove(lp) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock evidence: %w", err)
		}
		if fi, serr := os.Stat(lp); serr == nil && time.Since(fi.ModTime()) > StaleLock {
			if os.Remove(lp) == nil { // left by a crashed process
				continue
			}
		}
		if holder, rerr := os.ReadFile(lp); rerr == nil && lockOwnerGone(holder) {
			// Left by a process of this host that no longer runs (killed
			// while saving). Remove it only if it still is that lock.
			if again, _ := os.ReadFile(lp); bytes.Equal(again, holder) && os.Remove(lp) == nil {
				continue
			}
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(lp)
			return nil, fmt.Errorf("%w: %s (%s); remove it if no relaylock is running", ErrLocked, lp, strings.TrimSpace(string(holder)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
