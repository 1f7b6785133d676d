package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/relaylock/relaylock/audit"
)

// The file form of a bundle is json.NewEncoder with SetIndent("", "  ")
// of the sealed bundle. encodeBundle writes exactly those bytes, but
// section by section: each section is marshalled once, and the same bytes
// are indented into the file and canonicalised into the section's hash.
// An audit's targets (nearly all of a large audit) are marshalled and
// written one target at a time, so no copy of the whole section is held:
// writing a 1000-host audit needs a few hundred kilobytes besides the
// bundle itself. The targets may also come from a TargetSource
// (AuditRun.Targets), so that not even the bundle holds them. TestEncodeMatchesEncoder holds the output to the
// encoder's, byte for byte.

// indenter re-indents compact JSON as json.Indent(dst, src, "", "  ")
// does, over any number of Write calls, into w.
type indenter struct {
	w       io.Writer
	buf     []byte
	depth   int
	open    bool // the last byte was '{' or '[' and nothing followed yet
	inStr   bool
	escaped bool
	err     error
}

func newIndenter(w io.Writer) *indenter {
	return &indenter{w: w, buf: make([]byte, 0, 64<<10)}
}

func (ind *indenter) newline() {
	ind.buf = append(ind.buf, '\n')
	for range ind.depth {
		ind.buf = append(ind.buf, ' ', ' ')
	}
}

func (ind *indenter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if ind.inStr {
			// Copy the run of plain string bytes in one go.
			j := i
			for j < len(p) && p[j] != '"' && p[j] != '\\' && !ind.escaped {
				j++
			}
			ind.buf = append(ind.buf, p[i:j]...)
			if j == len(p) {
				break
			}
			i = j
			c = p[i]
			ind.buf = append(ind.buf, c)
			switch {
			case ind.escaped:
				ind.escaped = false
			case c == '\\':
				ind.escaped = true
			case c == '"':
				ind.inStr = false
			}
			continue
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		if ind.open {
			ind.open = false
			if c == '}' || c == ']' {
				ind.depth--
				ind.buf = append(ind.buf, c)
				continue
			}
			ind.newline()
		}
		switch c {
		case '"':
			ind.inStr = true
			ind.buf = append(ind.buf, c)
		case '{', '[':
			ind.buf = append(ind.buf, c)
			ind.depth++
			ind.open = true
		case '}', ']':
			ind.depth--
			ind.newline()
			ind.buf = append(ind.buf, c)
		case ',':
			ind.buf = append(ind.buf, c)
			ind.newline()
		case ':':
			ind.buf = append(ind.buf, ':', ' ')
		default:
			ind.buf = append(ind.buf, c)
		}
	}
	if len(ind.buf) >= 32<<10 {
		ind.flush()
	}
	return len(p), ind.err
}

func (ind *indenter) writeString(s string) { ind.Write([]byte(s)) }

func (ind *indenter) flush() error {
	if ind.err == nil && len(ind.buf) > 0 {
		_, ind.err = ind.w.Write(ind.buf)
	}
	ind.buf = ind.buf[:0]
	return ind.err
}

// hashSection returns the hex SHA-256 of the canonical form of a section's
// value; if file is not nil, it also writes the value's JSON to it.
// jcs selects RFC 8785 (AlgJCS) over the legacy form.
func hashSection(v any, file *indenter, jcs bool) (string, error) {
	h := sha256.New()
	if a, ok := v.(*AuditRun); ok && a.Result != nil && (a.Result.Targets != nil || a.Targets != nil) {
		if a.Targets != nil && a.Result.Targets != nil {
			return "", errors.New("audit run has both Result.Targets and a TargetSource")
		}
		skel, err := auditSkeleton(a)
		if err != nil {
			return "", err
		}
		if bytes.HasSuffix(skel, targetsTail) {
			if err := hashAudit(h, a, skel, file, jcs); err != nil {
				return "", err
			}
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		// A later field follows the targets: marshal the run whole.
		if a.Targets != nil {
			return "", errors.New("audit run JSON: the targets are not its last field")
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if file != nil {
		file.Write(data)
	}
	if err := writeForm(h, data, jcs); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// targetsTail is how the JSON of an AuditRun without targets ends:
// Result is AuditRun's last field and Targets Result's.
var targetsTail = []byte(`"targets":null}}`)

// hashAudit is hashSection of an audit run, one target at a time: the run
// is marshalled without its targets, and the canonicaliser splices the
// targets in where the skeleton holds `"targets":null`.
func hashAudit(h io.Writer, a *AuditRun, data []byte, file *indenter, jcs bool) error {
	at := len(data) - len("null}}")
	if file != nil {
		file.Write(data[:at])
	}
	source := a.Targets
	if source == nil {
		targets := a.Result.Targets
		source = func(yield func(*audit.TargetResult) error) error {
			for i := range targets {
				if err := yield(&targets[i]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	c := canonWriter{data: data, w: h, out: make([]byte, 0, canonFlush+1024), spliceAt: at, jcs: jcs,
		splice: func(yield func([]byte)) error {
			if file != nil {
				file.writeString("[")
			}
			i := 0
			err := source(func(t *audit.TargetResult) error {
				elem, err := json.Marshal(t)
				if err != nil {
					return err
				}
				if file != nil {
					if i > 0 {
						file.writeString(",")
					}
					file.Write(elem)
				}
				yield(elem)
				i++
				return nil
			})
			if err != nil {
				return fmt.Errorf("targets[%d]: %w", i, err)
			}
			if file != nil {
				file.writeString("]")
			}
			return nil
		}}
	if _, wrote := c.value(c.ws(0), 0); !wrote {
		c.emit("null")
	}
	if c.err != nil {
		return c.err
	}
	if !c.spliced {
		return fmt.Errorf("audit run JSON: targets not found")
	}
	h.Write(c.out)
	if file != nil {
		file.Write(data[at+len("null"):])
	}
	return nil
}

// auditSkeleton is the JSON of a without its targets.
func auditSkeleton(a *AuditRun) ([]byte, error) {
	res := *a.Result
	res.Targets = nil
	skel := *a
	skel.Result = &res
	return json.Marshal(&skel)
}

// encodeBundle seals b (sets b.Integrity) and writes its file form to w.
func encodeBundle(w io.Writer, b *Bundle) error {
	ind := newIndenter(w)
	field := func(name string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode evidence %s: %w", name, err)
		}
		ind.writeString(`"` + name + `":`)
		ind.Write(data)
		return nil
	}
	ss := b.sections()
	alg := b.algorithm()
	in := &Integrity{Algorithm: alg}
	content := make([]bool, len(ss))
	for i, s := range ss {
		content[i] = s.content
	}
	hashed := 0
	// hash hashes the next sections whose names start with prefix, writing
	// them to the file if write.
	hash := func(prefix string, write bool) error {
		first := true
		for hashed < len(ss) && (ss[hashed].name == prefix || len(ss[hashed].name) > len(prefix) && ss[hashed].name[:len(prefix)+1] == prefix+"[") {
			s := ss[hashed]
			var f *indenter
			if write {
				f = ind
				if !first {
					ind.writeString(",")
				}
			}
			first = false
			sum, err := hashSection(s.value, f, alg == AlgJCS)
			if err != nil {
				return fmt.Errorf("hash %s: %w", s.name, err)
			}
			in.Sections = append(in.Sections, SectionHash{Name: s.name, SHA256: sum})
			hashed++
		}
		return nil
	}
	ind.writeString("{")
	for _, f := range []struct {
		name string
		v    any
	}{{"schema", b.Schema}, {"id", b.ID}, {"created", b.Created}, {"updated", b.Updated},
		{"engagement", b.Engagement}, {"tool", b.Tool}} {
		if err := field(f.name, f.v); err != nil {
			return err
		}
		ind.writeString(",")
	}
	if err := hash("header", false); err != nil {
		return err
	}
	for _, arr := range []struct {
		name string
		null bool
	}{{"audits", b.Audits == nil}, {"inspections", b.Inspections == nil}, {"plans", b.Plans == nil},
		{"backups", b.Backups == nil}, {"changes", b.Changes == nil}, {"artifacts", b.Artifacts == nil}} {
		ind.writeString(`"` + arr.name + `":`)
		if arr.null {
			ind.writeString("null,")
			continue
		}
		ind.writeString("[")
		if err := hash(arr.name, true); err != nil {
			return err
		}
		ind.writeString("],")
	}
	if err := field("log", b.Log); err != nil {
		return err
	}
	if err := hash("log", false); err != nil {
		return err
	}
	if hashed != len(ss) {
		return fmt.Errorf("encode evidence: %d of %d sections hashed", hashed, len(ss))
	}
	in.Digest, in.Manifest = listHashes(in.Sections, content)
	ind.writeString(",")
	if err := field("integrity", in); err != nil {
		return err
	}
	ind.writeString("}")
	ind.buf = append(ind.buf, '\n')
	if err := ind.flush(); err != nil {
		return fmt.Errorf("write evidence: %w", err)
	}
	b.Integrity = in
	return nil
}
