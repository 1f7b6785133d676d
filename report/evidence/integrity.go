package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
)

// Integrity is the seal written by Save: the SHA-256 of every section's
// JSON encoding, in bundle order, and two hashes over that list.
type Integrity struct {
	// Algorithm is "sha256".
	Algorithm string `json:"algorithm"`
	// Sections are the section hashes in bundle order.
	Sections []SectionHash `json:"sections"`
	// Digest is the SHA-256 over the lines "<name> <sha256>\n" of the
	// content sections (header, audits, inspections, plans, backups,
	// changes). The PDF prints it as the evidence hash.
	Digest string `json:"digest"`
	// Manifest is the SHA-256 over the lines of every section, including
	// artifacts and the log.
	Manifest string `json:"manifest"`
}

// SectionHash is the hash of one section.
type SectionHash struct {
	// Name is "header", "audits[0]", "inspections[2]", "plans[0]",
	// "backups[0]", "changes[1]", "artifacts[0]" or "log".
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the section's compact JSON encoding
	// (encoding/json: struct field order, sorted map keys).
	SHA256 string `json:"sha256"`
}

// section is one hashed part of a bundle.
type section struct {
	name    string
	label   string // for messages: what the section is
	content bool   // part of the Digest
	value   any
}

// header is what the "header" section covers. Updated is hashed with the
// log, so that saving again does not change the Digest.
type header struct {
	Schema     string     `json:"schema"`
	ID         string     `json:"id"`
	Created    time.Time  `json:"created"`
	Engagement Engagement `json:"engagement"`
	Tool       Tool       `json:"tool"`
}

type logSection struct {
	Updated time.Time  `json:"updated"`
	Log     []LogEntry `json:"log"`
}

func (b *Bundle) sections() []section {
	ss := []section{{name: "header", label: "report id, engagement and tool", content: true,
		value: header{b.Schema, b.ID, b.Created, b.Engagement, b.Tool}}}
	for i := range b.Audits {
		a := &b.Audits[i]
		l := a.Purpose
		if a.Result != nil {
			l += " " + a.Result.Start.UTC().Format(time.RFC3339)
		}
		ss = append(ss, section{fmt.Sprintf("audits[%d]", i), l, true, a})
	}
	for i := range b.Inspections {
		in := &b.Inspections[i]
		ss = append(ss, section{fmt.Sprintf("inspections[%d]", i), "inspection of " + in.Host, true, in})
	}
	for i := range b.Plans {
		p := &b.Plans[i]
		ss = append(ss, section{fmt.Sprintf("plans[%d]", i), "plan for " + p.Host, true, p})
	}
	for i := range b.Backups {
		bk := &b.Backups[i]
		ss = append(ss, section{fmt.Sprintf("backups[%d]", i), "backup " + bk.File, true, bk})
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		ss = append(ss, section{fmt.Sprintf("changes[%d]", i), "change " + c.ID + " on " + c.Host, true, c})
	}
	for i := range b.Artifacts {
		a := &b.Artifacts[i]
		ss = append(ss, section{fmt.Sprintf("artifacts[%d]", i), "artifact " + a.Name, false, a})
	}
	ss = append(ss, section{"log", "log", false, logSection{b.Updated, b.Log}})
	return ss
}

func hashJSON(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if bytes.Contains(data, []byte(`\ufffd`)) {
		// encoding/json writes invalid UTF-8 as \ufffd; the file, once
		// read back, holds a real U+FFFD, which encodes differently. Hash
		// what a reader of the file will see: decode and encode again.
		p := reflect.New(reflect.TypeOf(v))
		if err := json.Unmarshal(data, p.Interface()); err != nil {
			return "", err
		}
		if data, err = json.Marshal(p.Interface()); err != nil {
			return "", err
		}
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// compute returns the section hashes and the Digest and Manifest over them.
func (b *Bundle) compute() (*Integrity, []section, error) {
	ss := b.sections()
	in := &Integrity{Algorithm: "sha256"}
	content := make([]bool, len(ss))
	for i, s := range ss {
		h, err := hashJSON(s.value)
		if err != nil {
			return nil, nil, fmt.Errorf("hash %s: %w", s.name, err)
		}
		in.Sections = append(in.Sections, SectionHash{Name: s.name, SHA256: h})
		content[i] = s.content
	}
	in.Digest, in.Manifest = listHashes(in.Sections, content)
	return in, ss, nil
}

// listHashes hashes the "<name> <sha256>\n" lines of the content sections
// (digest) and of all sections (manifest).
func listHashes(list []SectionHash, content []bool) (digest, manifest string) {
	d, m := sha256.New(), sha256.New()
	for i, s := range list {
		line := s.Name + " " + s.SHA256 + "\n"
		if content[i] {
			d.Write([]byte(line))
		}
		m.Write([]byte(line))
	}
	return hex.EncodeToString(d.Sum(nil)), hex.EncodeToString(m.Sum(nil))
}

// isContent says whether a section name belongs to the Digest.
func isContent(name string) bool {
	return name != "log" && !strings.HasPrefix(name, "artifacts[")
}

// Seal computes b.Integrity. Save calls it.
func Seal(b *Bundle) error {
	in, _, err := b.compute()
	if err != nil {
		return err
	}
	b.Integrity = in
	return nil
}

// Compute returns the integrity block of b as it is now, without storing
// it (Seal stores it).
func Compute(b *Bundle) (*Integrity, error) {
	in, _, err := b.compute()
	return in, err
}

// Digest returns the bundle's content digest as computed now (what the PDF
// prints and Check compares with the recorded one).
func (b *Bundle) Digest() (string, error) {
	in, _, err := b.compute()
	if err != nil {
		return "", err
	}
	return in.Digest, nil
}

// CheckResult is what Check found.
type CheckResult struct {
	// Digest is the recomputed content digest.
	Digest string
	// OK lists what was checked and matched, one line each.
	OK []string
	// Problems lists every mismatch, one line each, naming the section or
	// file. Empty means the evidence verified.
	Problems []string
	// Notes are facts that are not failures (a backup file not present).
	Notes []string
}

// Check recomputes every hash of b and compares it with the seal, then
// checks the SHA-256 of every backup and artifact file it can find.
// Relative file paths are tried as written, relative to dir (the evidence
// file's directory), and as a base name in dir.
func Check(b *Bundle, dir string) (*CheckResult, error) {
	in, ss, err := b.compute()
	if err != nil {
		return nil, err
	}
	r := &CheckResult{Digest: in.Digest}
	rec := b.Integrity
	if rec == nil {
		r.Problems = append(r.Problems, "integrity: no seal in the file (not written by relaylock Save)")
		return r, nil
	}
	if rec.Algorithm != "sha256" {
		r.Problems = append(r.Problems, fmt.Sprintf("integrity: unknown algorithm %q", rec.Algorithm))
		return r, nil
	}
	recorded := make(map[string]string, len(rec.Sections))
	for _, s := range rec.Sections {
		recorded[s.Name] = s.SHA256
	}
	for i, s := range in.Sections {
		want, ok := recorded[s.Name]
		switch {
		case !ok:
			r.Problems = append(r.Problems, fmt.Sprintf("%s (%s): not in the seal (section added after sealing)", s.Name, ss[i].label))
		case want != s.SHA256:
			r.Problems = append(r.Problems, fmt.Sprintf("%s (%s): content changed: sha256 %s, sealed %s", s.Name, ss[i].label, s.SHA256, want))
		default:
			r.OK = append(r.OK, fmt.Sprintf("%s (%s): sha256 %s", s.Name, ss[i].label, s.SHA256))
		}
		delete(recorded, s.Name)
	}
	for _, s := range rec.Sections {
		if _, left := recorded[s.Name]; left {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: sealed but missing (section removed)", s.Name))
		}
	}
	// The seal's own list must hash to its Digest and Manifest, or the
	// list was edited.
	content := make([]bool, len(rec.Sections))
	for i, s := range rec.Sections {
		content[i] = isContent(s.Name)
	}
	d, m := listHashes(rec.Sections, content)
	if d != rec.Digest {
		r.Problems = append(r.Problems, fmt.Sprintf("integrity.digest: %s does not match the sealed section list (%s)", rec.Digest, d))
	}
	if m != rec.Manifest {
		r.Problems = append(r.Problems, fmt.Sprintf("integrity.manifest: %s does not match the sealed section list (%s)", rec.Manifest, m))
	}
	if len(r.Problems) == 0 {
		r.OK = append(r.OK, "digest "+in.Digest)
	}

	checkFile := func(what, path, want string) {
		if path == "" || want == "" {
			return
		}
		p, ok := findFile(path, dir)
		if !ok {
			r.Notes = append(r.Notes, fmt.Sprintf("%s %s: file not present, hash not checked", what, path))
			return
		}
		got, err := SHA256File(p)
		switch {
		case err != nil:
			r.Problems = append(r.Problems, fmt.Sprintf("%s %s: %v", what, p, err))
		case !strings.EqualFold(got, want):
			r.Problems = append(r.Problems, fmt.Sprintf("%s %s: file changed: sha256 %s, recorded %s", what, p, got, want))
		default:
			r.OK = append(r.OK, fmt.Sprintf("%s %s: sha256 %s", what, p, got))
		}
	}
	for _, bk := range b.Backups {
		checkFile("backup", bk.File, bk.SHA256)
	}
	for _, a := range b.Artifacts {
		checkFile("artifact", a.Path, a.SHA256)
		if a.EvidenceDigest != "" && a.EvidenceDigest != in.Digest {
			r.Notes = append(r.Notes, fmt.Sprintf("artifact %s was produced from digest %s; the evidence has changed since (digest %s): render the report again", a.Name, a.EvidenceDigest, in.Digest))
		}
	}
	return r, nil
}

// findFile locates a recorded file: as written, relative to dir, or by
// base name in dir.
func findFile(path, dir string) (string, bool) {
	cands := []string{path}
	if !filepath.IsAbs(path) {
		cands = append(cands, filepath.Join(dir, path))
	}
	cands = append(cands, filepath.Join(dir, filepath.Base(path)))
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c, true
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return c, true // let SHA256File report the error
		}
	}
	return "", false
}
