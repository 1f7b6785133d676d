package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaylock/relaylock/internal/atomicfile"
)

// Integrity is the seal written by Save: the SHA-256 of every section's
// JSON encoding, in bundle order, and two hashes over that list.
type Integrity struct {
	// Algorithm names how sections are hashed: AlgJCS for every file
	// started by this version or later, AlgLegacy for older files (which
	// keep it when added to, so their digest does not change).
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
	// SHA256 is the hex SHA-256 of the section's canonical JSON form
	// (see Algorithm).
	SHA256 string `json:"sha256"`
}

// Seal algorithms (Integrity.Algorithm).
const (
	// AlgJCS: a section's hash is the SHA-256 of its JSON value in the
	// JSON Canonicalization Scheme, RFC 8785, exactly as it is in the
	// file: nothing dropped, so the hash covers every member a reader
	// decodes. Strict reading (strict.go) refuses what RFC 8785 cannot
	// represent exactly.
	//
	// Why a standard form and not hashing each section's bytes: the
	// sections are nested in one indented document, so a verifier would
	// need a JSON scanner that reports byte offsets; RFC 8785 needs only a
	// JSON parser and a few lines (README, "Integrity and signing"), and
	// there are implementations in many languages.
	AlgJCS = "jcs-sha256"
	// AlgLegacy: the SHA-256 of relaylock's own canonical form (empty
	// members dropped, keys sorted by bytes, encoding/json string escapes
	// with <, > and & as \u003c \u003e \u0026, numbers as written). Files
	// sealed before AlgJCS use it; they still verify and are still sealed
	// with it when added to.
	AlgLegacy = "sha256"
)

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
		l := string(a.Purpose)
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

// canonicalHash is the SHA-256 of the legacy canonical form of a JSON
// value: decoded, with every empty member dropped from objects (null,
// false, 0, "", [], {}), object keys sorted, re-encoded compactly.
func canonicalHash(data []byte) (string, error) {
	h := sha256.New()
	if err := writeCanonical(h, data); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// algorithm is the seal algorithm b is hashed with: the one its file was
// sealed with, or AlgJCS for a new bundle.
func (b *Bundle) algorithm() string {
	if b.Integrity != nil && b.Integrity.Algorithm == AlgLegacy {
		return AlgLegacy
	}
	return AlgJCS
}

// compute returns the section hashes and the Digest and Manifest over them.
func (b *Bundle) compute() (*Integrity, []section, error) {
	ss := b.sections()
	alg := b.algorithm()
	in := &Integrity{Algorithm: alg}
	content := make([]bool, len(ss))
	for i, s := range ss {
		h, err := hashSection(s.value, nil, alg == AlgJCS)
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
	// SealedDigest is the digest the seal records (empty without a seal);
	// it equals Digest when the content matches the seal.
	SealedDigest string
	// Mismatched names, one each, every section whose hash does not match
	// the sealed hash of the same name (a moved record counts, as it does
	// for any verifier that compares by name), integrity.digest or
	// integrity.manifest, and each member no hash covers. Problems may
	// explain several of them in one line (a record removed, the later
	// ones moved up).
	Mismatched []string
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
	return check(b, in, ss, dir), nil
}

// CheckFile is Check on the bytes of an evidence file: the section hashes
// are computed from the JSON in the file, not from this build's Go types,
// so a file written by a newer relaylock (with fields this one does not
// know) verifies too. It returns the parsed bundle as well.
//
// The file must still read strictly as JSON (no keys equal ignoring case
// in one object, valid strings and numbers: strict.go); only fields this
// build does not know are tolerated.
func CheckFile(path string) (*Bundle, *CheckResult, error) {
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read evidence: %w", err)
	}
	b, err := parse(data, false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	in, err := rawCompute(data, b.algorithm())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", path, ErrMalformed, err)
	}
	r := checkSeal(b, in, b.sections())
	for _, u := range uncovered(data) {
		r.Problems = append(r.Problems, u)
		name, _, _ := strings.Cut(u, ":")
		r.Mismatched = append(r.Mismatched, name)
	}
	checkFiles(r, b, in, filepath.Dir(path))
	return b, r, nil
}

// Members the seal covers: each top-level member is in a section, or is
// the seal; the seal's own members are covered by its digest and
// manifest. verify.py has the same lists.
var (
	coveredTop = []string{"schema", "id", "created", "updated", "engagement", "tool",
		"audits", "inspections", "plans", "backups", "changes", "artifacts", "log", "integrity"}
	coveredSeal    = []string{"algorithm", "sections", "digest", "manifest"}
	coveredSection = []string{"name", "sha256"}
)

// uncovered names the members of an evidence file (valid JSON) that no
// hash covers, one problem each, sorted: a top-level member outside every
// section, a member of integrity or of one of its sections[] entries
// other than those defined. Such text could be added or changed without
// any hash noticing, so a file holding it is not verified, whether it was
// added after sealing or written by a newer relaylock whose seal this one
// cannot check. (Case variants of known names are refused earlier, as
// malformed.)
func uncovered(data []byte) []string {
	var out []string
	extra := func(prefix string, raw []byte, known []string) map[string][]byte {
		m, err := rawMembers(raw)
		if err != nil {
			return nil // not an object: checkSeal names it
		}
		for k := range m {
			if !slices.Contains(known, k) {
				out = append(out, fmt.Sprintf("%s%s: member that no hash covers (added after sealing, or written by a newer relaylock whose seal this one cannot check)", prefix, k))
			}
		}
		return m
	}
	top := extra("", data, coveredTop)
	if seal := top["integrity"]; seal != nil {
		if m := extra("integrity.", seal, coveredSeal); m != nil {
			list, _ := rawElements(m["sections"])
			for i, e := range list {
				extra(fmt.Sprintf("integrity.sections[%d].", i), e, coveredSection)
			}
		}
	}
	slices.Sort(out)
	return out
}

// ErrModified: the evidence file does not match its seal (a section was
// changed, added or removed after it was sealed, or a file it names
// changed). Test with errors.Is; errors.As with *ModifiedError gives the
// verification result.
var ErrModified = errors.New("evidence modified after sealing")

// ModifiedError is returned by LoadVerified and Update for evidence that
// does not verify.
type ModifiedError struct {
	Path   string
	Result *CheckResult
}

func (e *ModifiedError) Error() string {
	msg := fmt.Sprintf("%s: %v (%s", e.Path, ErrModified, Count(len(e.Result.Problems), "problem", "problems"))
	if len(e.Result.Problems) > 0 {
		msg += ", first: " + e.Result.Problems[0]
	}
	return msg + "); run 'relaylock verify " + e.Path + "'"
}

func (e *ModifiedError) Is(target error) bool { return target == ErrModified }

// Count is "1 problem", "2 problems".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Modified names the sections (and files) that do not match, one per
// problem: "audits[0]", "integrity.digest", "backup b.json"; a removed
// record whose later records moved up is named once ("changes[0]").
func (r *CheckResult) Modified() []string {
	var out []string
	for _, p := range r.Problems {
		name, _, _ := strings.Cut(p, ":")
		name, _, _ = strings.Cut(name, " (")
		name, _, _ = strings.Cut(name, " is ")
		out = append(out, name)
	}
	return out
}

// LoadVerified reads an evidence file strictly (Parse) and checks it as
// CheckFile does, backup and artifact files included. When the file does
// not verify it returns the bundle, the result and a *ModifiedError, so a
// caller may still show what the file holds, marked as modified.
func LoadVerified(path string) (*Bundle, *CheckResult, error) {
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read evidence: %w", err)
	}
	b, r, err := verifyData(path, data)
	if err != nil {
		return b, r, err
	}
	checkFiles(r, b, &Integrity{Digest: r.Digest}, filepath.Dir(path))
	if len(r.Problems) > 0 {
		return b, r, &ModifiedError{Path: path, Result: r}
	}
	return b, r, nil
}

// verifyData parses data strictly and checks its seal (not the files it
// names). A seal mismatch is a *ModifiedError, returned with b and r.
func verifyData(path string, data []byte) (*Bundle, *CheckResult, error) {
	b, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	in, err := rawCompute(data, b.algorithm())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", path, ErrMalformed, err)
	}
	r := checkSeal(b, in, b.sections())
	if len(r.Problems) > 0 {
		return b, r, &ModifiedError{Path: path, Result: r}
	}
	return b, r, nil
}

// rawCompute hashes the sections of an evidence file as they are in it,
// with the given algorithm. data must be valid JSON (CheckFile has parsed
// it): the sections are found by scanning it in place, without copying
// them.
func rawCompute(data []byte, alg string) (*Integrity, error) {
	top, err := rawMembers(data)
	if err != nil {
		return nil, err
	}
	// pick is the object of the given members, as a section.
	pick := func(keys ...string) []byte {
		buf := []byte{'{'}
		for _, k := range keys {
			if v, ok := top[k]; ok {
				if len(buf) > 1 {
					buf = append(buf, ',')
				}
				buf = appendString(buf, []byte(k))
				buf = append(buf, ':')
				buf = append(buf, v...)
			}
		}
		return append(buf, '}')
	}
	in := &Integrity{Algorithm: alg}
	var content []bool
	add := func(name string, raw []byte, isContent bool) error {
		sum := sha256.New()
		if err := writeForm(sum, raw, alg == AlgJCS); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		in.Sections = append(in.Sections, SectionHash{Name: name, SHA256: hex.EncodeToString(sum.Sum(nil))})
		content = append(content, isContent)
		return nil
	}
	if err := add("header", pick("schema", "id", "created", "engagement", "tool"), true); err != nil {
		return nil, err
	}
	for _, key := range []string{"audits", "inspections", "plans", "backups", "changes", "artifacts"} {
		elems, err := rawElements(top[key])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		for i, e := range elems {
			if err := add(fmt.Sprintf("%s[%d]", key, i), e, key != "artifacts"); err != nil {
				return nil, err
			}
		}
	}
	if err := add("log", pick("updated", "log"), false); err != nil {
		return nil, err
	}
	in.Digest, in.Manifest = listHashes(in.Sections, content)
	return in, nil
}

// rawMembers returns the members of the valid JSON object in data by
// decoded key, the last of a repeated key winning as in a decode.
func rawMembers(data []byte) (map[string][]byte, error) {
	c := canonWriter{data: data}
	i := c.ws(0)
	if i >= len(data) || data[i] != '{' {
		return nil, fmt.Errorf("%w: not an object", errNotJSON)
	}
	top := map[string][]byte{}
	j := c.ws(i + 1)
	if data[j] == '}' {
		return top, nil
	}
	for {
		kend := c.skipString(j)
		key := string(c.decodeKey(j, kend))
		j = c.ws(c.ws(kend) + 1) // ':'
		end := c.skip(j)
		top[key] = data[j:end]
		j = c.ws(end)
		if data[j] == '}' {
			return top, nil
		}
		j = c.ws(j + 1) // ','
	}
}

// rawElements returns the elements of a valid JSON array (none for an
// absent member or null).
func rawElements(raw []byte) ([][]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, fmt.Errorf("%w: not an array", errNotJSON)
	}
	c := canonWriter{data: raw}
	var elems [][]byte
	j := c.ws(1)
	if raw[j] == ']' {
		return nil, nil
	}
	for {
		end := c.skip(j)
		elems = append(elems, raw[j:end])
		j = c.ws(end)
		if raw[j] == ']' {
			return elems, nil
		}
		j = c.ws(j + 1)
	}
}

// check compares computed hashes with b's seal and checks the files.
func check(b *Bundle, in *Integrity, ss []section, dir string) *CheckResult {
	r := checkSeal(b, in, ss)
	checkFiles(r, b, in, dir)
	r.Notes = append(r.Notes, checkLinks(b)...)
	return r
}

// checkSeal compares computed hashes with b's seal.
func checkSeal(b *Bundle, in *Integrity, ss []section) *CheckResult {
	label := map[string]string{}
	for _, s := range ss {
		label[s.name] = s.label
	}
	r := &CheckResult{Digest: in.Digest}
	rec := b.Integrity
	if rec == nil {
		r.Problems = append(r.Problems, "integrity: no seal in the file (not written by relaylock Save)")
		r.Mismatched = []string{"integrity"}
		return r
	}
	r.SealedDigest = rec.Digest
	if rec.Algorithm != AlgJCS && rec.Algorithm != AlgLegacy {
		r.Problems = append(r.Problems, fmt.Sprintf("integrity: unknown algorithm %q", rec.Algorithm))
		r.Mismatched = []string{"integrity"}
		return r
	}
	recorded := make(map[string]string, len(rec.Sections))
	for _, s := range rec.Sections {
		recorded[s.Name] = s.SHA256
	}
	// Compared by name first: what any verifier sees (Mismatched).
	for _, s := range in.Sections {
		if want, ok := recorded[s.Name]; !ok || want != s.SHA256 {
			r.Mismatched = append(r.Mismatched, s.Name)
		}
	}
	present := map[string]bool{}
	for _, s := range in.Sections {
		present[s.Name] = true
	}
	for _, s := range rec.Sections {
		if !present[s.Name] {
			r.Mismatched = append(r.Mismatched, s.Name)
		}
	}
	// A list with one record deleted or inserted, the rest intact but
	// moved, is named once (the record), not once per moved record.
	shifted := map[string]bool{} // lists explained by a shift
	for _, kind := range []string{"audits", "inspections", "plans", "backups", "changes", "artifacts"} {
		now, sealed := listOf(in.Sections, kind), listOf(rec.Sections, kind)
		if msg, ok := describeShift(kind, now, sealed, in.Sections, label); ok {
			shifted[kind] = true
			r.Problems = append(r.Problems, msg)
			for i, h := range now {
				if k := slices.Index(sealed, h); k >= 0 {
					name := fmt.Sprintf("%s[%d]", kind, i)
					r.OK = append(r.OK, fmt.Sprintf("%s (%s): section hash %s, sealed as %s[%d]", name, label[name], h, kind, k))
				}
			}
		}
	}
	kindOf := func(name string) string { k, _, _ := strings.Cut(name, "["); return k }
	for _, s := range in.Sections {
		if shifted[kindOf(s.Name)] {
			continue
		}
		want, ok := recorded[s.Name]
		switch {
		case !ok:
			r.Problems = append(r.Problems, fmt.Sprintf("%s (%s): not in the seal (section added after sealing)", s.Name, label[s.Name]))
		case want != s.SHA256:
			r.Problems = append(r.Problems, fmt.Sprintf("%s (%s): content changed: section hash %s, sealed %s", s.Name, label[s.Name], s.SHA256, want))
		default:
			r.OK = append(r.OK, fmt.Sprintf("%s (%s): section hash %s", s.Name, label[s.Name], s.SHA256))
		}
	}
	for _, s := range rec.Sections {
		if !present[s.Name] && !shifted[kindOf(s.Name)] {
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
		r.Mismatched = append(r.Mismatched, "integrity.digest")
	}
	if m != rec.Manifest {
		r.Problems = append(r.Problems, fmt.Sprintf("integrity.manifest: %s does not match the sealed section list (%s)", rec.Manifest, m))
		r.Mismatched = append(r.Mismatched, "integrity.manifest")
	}
	if len(r.Problems) == 0 {
		r.OK = append(r.OK, "digest "+in.Digest)
	}
	return r
}

// listOf returns the hashes of the sections "kind[N]", in order.
func listOf(list []SectionHash, kind string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s.Name, kind+"[") {
			out = append(out, s.SHA256)
		}
	}
	return out
}

// describeShift explains a list whose records match the sealed ones
// except for one record deleted or inserted before its end (so that the
// later records moved): "changes[0] is missing; the later records moved
// up". It answers false for anything else, including a record deleted or
// added at the end, which the per-section lines name exactly.
func describeShift(kind string, now, sealed []string, secs []SectionHash, label map[string]string) (string, bool) {
	without := func(l []string, k int) []string { return slices.Concat(l[:k], l[k+1:]) }
	moved := func(from, to, n int) string {
		if n == 1 {
			return fmt.Sprintf("sealed %s[%d] is now %s[%d]", kind, from, kind, to)
		}
		return fmt.Sprintf("sealed %s[%d] to %s[%d] are now %s[%d] to %s[%d]", kind, from, kind, from+n-1, kind, to, kind, to+n-1)
	}
	switch {
	case len(sealed) == len(now)+1:
		for k := range len(now) { // k == len(now): the last one, not a shift
			if slices.Equal(now, without(sealed, k)) {
				return fmt.Sprintf("%s[%d] is missing; the later records moved up (%s): a record was removed after sealing", kind, k, moved(k+1, k, len(now)-k)), true
			}
		}
	case len(now) == len(sealed)+1:
		for k := range len(sealed) {
			if slices.Equal(sealed, without(now, k)) {
				name := fmt.Sprintf("%s[%d]", kind, k)
				return fmt.Sprintf("%s (%s) is not in the seal (inserted); the later records moved down (%s): a record was added after sealing", name, label[name], moved(k, k+1, len(sealed)-k)), true
			}
		}
	}
	return "", false
}

// checkFiles checks the SHA-256 of every backup and artifact file of b
// that is present.
func checkFiles(r *CheckResult, b *Bundle, in *Integrity, dir string) {
	tampered := len(r.Problems) > 0 // the seal does not match: not a legitimate addition
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
			r.Problems = append(r.Problems, fmt.Sprintf("%s %s: file changed: file sha256 %s, recorded %s", what, p, got, want))
		default:
			r.OK = append(r.OK, fmt.Sprintf("%s %s: file sha256 %s as recorded", what, p, got))
		}
	}
	for _, bk := range b.Backups {
		checkFile("backup", bk.File, bk.SHA256)
	}
	for _, a := range b.Artifacts {
		checkFile("artifact", a.Path, a.SHA256)
		switch {
		case a.EvidenceDigest == "" || a.EvidenceDigest == in.Digest:
		case tampered:
			r.Notes = append(r.Notes, fmt.Sprintf("artifact %s was produced from digest %s; this file's content now hashes to %s and does not match its seal: it was changed after sealing, and a report rendered from it would show the changed content", a.Name, a.EvidenceDigest, in.Digest))
		default:
			r.Notes = append(r.Notes, fmt.Sprintf("artifact %s was produced from digest %s; records were added to the evidence since (digest %s): render the report again", a.Name, a.EvidenceDigest, in.Digest))
		}
	}
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
