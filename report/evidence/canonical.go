package evidence

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file computes the canonical forms of a JSON value in one streaming
// pass over its bytes, writing it straight into the hash. There are two:
//
//   - JCS, RFC 8785 (AlgJCS, every file written since seal v2): keys
//     sorted by UTF-16 code units, strings with the minimal escapes,
//     numbers as ECMAScript prints the double, nothing dropped.
//   - the legacy form (AlgLegacy, files sealed before): kept so that
//     those files still verify and keep their digest when added to.
//
// The legacy form's definition is that of decoding the value with
// encoding/json (UseNumber) into generic maps and slices, dropping empty
// object members recursively, and re-encoding with json.Marshal; the
// differential tests in canonical_test.go hold the two to byte equality.
// The generic tree of a 1000-host audit takes several times the file's
// size; this pass keeps only the member list of the objects being walked.
//
// Emptiness is only known once a value has been read (an object whose
// members are all empty is itself empty), so the bytes that lead to a
// value (an object's "{", a member's `,"key":`) are held back in pending
// and written only when the first non-empty scalar below them is.

// errNotJSON is returned for input that is not exactly one JSON value.
var errNotJSON = errors.New("invalid JSON")

// canonWriter streams the canonical form of data into w.
type canonWriter struct {
	data    []byte
	w       io.Writer
	out     []byte     // written, not yet handed to w
	pending []byte     // held back until a non-empty value follows
	members [][]member // one reusable member list per object depth

	// splice, if set, supplies the elements of the array that replaces
	// the value at spliceAt (see hashAudit).
	splice   func(yield func(elem []byte)) error
	spliceAt int
	spliced  bool
	err      error
	scratch  []byte // a decoded string

	// jcs selects RFC 8785 instead of the legacy form.
	jcs bool
}

// member is an object member: its decoded key and where its value starts.
type member struct {
	key []byte
	val int
}

const canonFlush = 64 << 10

// writeCanonical writes the canonical form of the JSON value in data to w.
// data must be exactly one valid JSON value (with optional white space).
func writeCanonical(w io.Writer, data []byte) error {
	if !json.Valid(data) {
		// The same error the reference decoder gives.
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		return errNotJSON
	}
	return writeCanonicalValid(w, data)
}

// writeCanonicalValid is writeCanonical for data known to be valid JSON
// (json.Marshal output, or json.RawMessage from a successful decode).
func writeCanonicalValid(w io.Writer, data []byte) error {
	return writeForm(w, data, false)
}

// writeJCS writes the RFC 8785 form of data, which must be valid JSON
// that passes checkStrict's string and number rules (json.Marshal output
// does).
func writeJCS(w io.Writer, data []byte) error {
	return writeForm(w, data, true)
}

func writeForm(w io.Writer, data []byte, jcs bool) error {
	c := canonWriter{data: data, w: w, out: make([]byte, 0, canonFlush+1024), jcs: jcs}
	_, wrote := c.value(c.ws(0), 0)
	if !wrote {
		c.emit("null")
	}
	w.Write(c.out)
	return c.err
}

func (c *canonWriter) ws(i int) int {
	for i < len(c.data) {
		switch c.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// commit writes what was held back: the value about to be written is not
// empty.
func (c *canonWriter) commit() {
	if len(c.pending) > 0 {
		c.out = append(c.out, c.pending...)
		c.pending = c.pending[:0]
	}
	if len(c.out) >= canonFlush {
		c.w.Write(c.out)
		c.out = c.out[:0]
	}
}

func (c *canonWriter) emit(s string) {
	c.commit()
	c.out = append(c.out, s...)
}

// value writes the canonical form of the value at i (no leading white
// space) and returns the index after it and whether it wrote anything
// (false: the value is empty and is dropped).
func (c *canonWriter) value(i, depth int) (int, bool) {
	d := c.data
	if c.splice != nil && i == c.spliceAt && !c.spliced {
		return i + len("null"), c.spliceArray(depth)
	}
	switch d[i] {
	case '{':
		return c.object(i, depth)
	case '[':
		j := c.ws(i + 1)
		if d[j] == ']' {
			if c.jcs {
				c.emit("[]")
				return j + 1, true
			}
			return j + 1, false
		}
		c.emit("[")
		for {
			var wrote bool
			j, wrote = c.value(j, depth+1)
			if !wrote {
				c.out = append(c.out, "null"...) // positions matter
			}
			j = c.ws(j)
			if d[j] == ']' {
				c.out = append(c.out, ']')
				return j + 1, true
			}
			c.out = append(c.out, ',')
			j = c.ws(j + 1)
		}
	case '"':
		end := c.skipString(i)
		if end == i+2 && !c.jcs {
			return end, false
		}
		c.commit()
		c.out = c.appendString(c.out, i, end)
		return end, true
	case 't':
		c.emit("true")
		return i + 4, true
	case 'f':
		if c.jcs {
			c.emit("false")
			return i + 5, true
		}
		return i + 5, false
	case 'n':
		if c.jcs {
			c.emit("null")
			return i + 4, true
		}
		return i + 4, false
	default:
		end := c.skipNumber(i)
		if c.jcs {
			c.commit()
			var err error
			if c.out, err = appendJCSNumber(c.out, d[i:end]); err != nil && c.err == nil {
				c.err = err
			}
			return end, true
		}
		if isZero(d[i:end]) {
			return end, false
		}
		c.commit()
		c.out = append(c.out, d[i:end]...)
		return end, true
	}
}

// spliceArray writes the array c.splice supplies, one element at a time.
func (c *canonWriter) spliceArray(depth int) bool {
	c.spliced = true
	saved, n := c.data, 0
	err := c.splice(func(elem []byte) {
		if n == 0 {
			c.emit("[")
		} else {
			c.out = append(c.out, ',')
		}
		n++
		c.data = elem
		if _, wrote := c.value(c.ws(0), depth+1); !wrote {
			c.out = append(c.out, "null"...)
		}
		c.data = saved
	})
	if err != nil && c.err == nil {
		c.err = err
	}
	if n == 0 {
		if c.jcs {
			c.emit("[]")
			return true
		}
		return false
	}
	c.out = append(c.out, ']')
	return true
}

// object writes an object's non-empty members in key order; a repeated key
// keeps its last value, as decoding into a map does.
func (c *canonWriter) object(i, depth int) (int, bool) {
	d := c.data
	for len(c.members) <= depth {
		c.members = append(c.members, nil)
	}
	ms := c.members[depth][:0]
	j := c.ws(i + 1)
	if d[j] == '}' {
		if c.jcs {
			c.emit("{}")
			return j + 1, true
		}
		return j + 1, false
	}
	for {
		kend := c.skipString(j)
		key := c.decodeKey(j, kend)
		j = c.ws(kend)
		j = c.ws(j + 1) // ':'
		ms = append(ms, member{key, j})
		j = c.ws(c.skip(j))
		if d[j] == '}' {
			j++
			break
		}
		j = c.ws(j + 1) // ','
	}
	c.members[depth] = ms
	if c.jcs {
		slices.SortStableFunc(ms, func(a, b member) int { return compareUTF16(a.key, b.key) })
	} else {
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	}
	mark := len(c.pending)
	wroteAny := false
	for k := range ms {
		if k+1 < len(ms) && bytes.Equal(ms[k].key, ms[k+1].key) {
			continue // a later member has the same key
		}
		m := len(c.pending)
		if wroteAny {
			c.pending = append(c.pending, ',')
		} else {
			c.pending = append(c.pending, '{')
		}
		if c.jcs {
			c.pending = appendJCSString(c.pending, ms[k].key)
		} else {
			c.pending = appendString(c.pending, ms[k].key)
		}
		c.pending = append(c.pending, ':')
		if _, wrote := c.value(ms[k].val, depth+1); wrote {
			wroteAny = true
		} else {
			c.pending = c.pending[:m]
		}
	}
	if !wroteAny {
		c.pending = c.pending[:mark]
		return j, false
	}
	c.out = append(c.out, '}')
	return j, true
}

// skip returns the index after the value at i.
func (c *canonWriter) skip(i int) int {
	d := c.data
	switch d[i] {
	case '"':
		return c.skipString(i)
	case '{', '[':
		level := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				j = c.skipString(j) - 1
			case '{', '[':
				level++
			case '}', ']':
				level--
				if level == 0 {
					return j + 1
				}
			}
		}
		return len(d)
	case 't', 'n':
		return i + 4
	case 'f':
		return i + 5
	default:
		return c.skipNumber(i)
	}
}

// skipString returns the index after the string starting at i (a '"').
func (c *canonWriter) skipString(i int) int {
	d := c.data
	j := i + 1
	for {
		k := bytes.IndexByte(d[j:], '"')
		if k < 0 {
			return len(d)
		}
		j += k
		// An odd run of backslashes before the quote escapes it.
		n := 0
		for p := j - 1; p > i && d[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

func (c *canonWriter) skipNumber(i int) int {
	d := c.data
	j := i
	for j < len(d) {
		switch b := d[j]; {
		case b >= '0' && b <= '9', b == '-', b == '+', b == '.', b == 'e', b == 'E':
			j++
		default:
			return j
		}
	}
	return j
}

// isZero says whether a JSON number is 0 as json.Number.Float64 reads it
// (so "-0", "0.0e5" and an underflowing "1e-400" are zero).
func isZero(num []byte) bool {
	zeroMantissa, integer := true, true
	for _, b := range num {
		if b == 'e' || b == 'E' {
			integer = false
			break
		}
		if b == '.' {
			integer = false
		} else if b >= '1' && b <= '9' {
			zeroMantissa = false
		}
	}
	switch {
	case zeroMantissa:
		return true
	case integer:
		return false // a non-zero integer (or one out of range, which is kept)
	}
	f, err := strconv.ParseFloat(string(num), 64)
	return err == nil && f == 0
}

// plain says whether the string's bytes between the quotes are its
// decoded value: no escapes, only ASCII.
func plain(s []byte) bool {
	for _, b := range s {
		if b == '\\' || b >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeKey returns the decoded value of the string d[i:end].
func (c *canonWriter) decodeKey(i, end int) []byte {
	if raw := c.data[i+1 : end-1]; plain(raw) {
		return raw
	}
	return c.unquote(nil, i, end)
}

// unquote appends the decoded value of the string d[i:end] to dst, the
// way encoding/json decodes it (invalid UTF-8 and lone surrogates become
// U+FFFD).
func (c *canonWriter) unquote(dst []byte, i, end int) []byte {
	if out, ok := unquoteSimple(dst, c.data[i+1:end-1]); ok {
		return out
	}
	var s string
	if err := json.Unmarshal(c.data[i:end], &s); err != nil {
		panic("evidence: canonical form of invalid JSON string: " + err.Error()) // input was validated
	}
	return append(dst, s...)
}

// unquoteSimple decodes the escapes of a valid JSON string body, unless it
// holds a surrogate escape or invalid UTF-8, which it leaves to
// encoding/json (ok false).
func unquoteSimple(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		b := s[i]
		switch {
		case b == '\\':
			e := s[i+1]
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, err := strconv.ParseUint(string(s[i+2:i+6]), 16, 32)
				if err != nil || utf16.IsSurrogate(rune(r)) {
					return dst, false
				}
				dst = utf8.AppendRune(dst, rune(r))
				i += 6
				continue
			default:
				return dst, false
			}
			i += 2
		case b < utf8.RuneSelf:
			dst = append(dst, b)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, false
			}
			dst = append(dst, s[i:i+size]...)
			i += size
		}
	}
	return dst, true
}

// appendString appends the string d[i:end] as json.Marshal encodes its
// decoded value.
func (c *canonWriter) appendString(dst []byte, i, end int) []byte {
	raw := c.data[i+1 : end-1]
	enc := appendString
	if c.jcs {
		enc = appendJCSString
	}
	if plain(raw) {
		return enc(dst, raw)
	}
	c.scratch = c.unquote(c.scratch[:0], i, end)
	return enc(dst, c.scratch)
}

// appendJCSString is the string form of RFC 8785 section 3.2.2.2 for a
// valid UTF-8 string: '"' and '\' escaped with a backslash; U+0008,
// U+0009, U+000A, U+000C and U+000D as \b \t \n \f \r; every other
// control character below U+0020 as \u00xx with lower-case hex; all
// else (non-ASCII, '<', '/', U+2028 included) as itself.
// appendByteEscape appends the JSON escape of an ASCII byte that must be
// escaped: the short forms of RFC 8259 §7 where there is one, else \u00XX.
// The RFC 8785 form and the legacy (Go encoding/json) form share it.
func appendByteEscape(dst []byte, b byte) []byte {
	switch b {
	case '\\', '"':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
}

func appendJCSString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, b := range s {
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendByteEscape(dst, b)
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJCSNumber appends a JSON number as RFC 8785 section 3.2.2.3
// prints it: the shortest decimal that reads back as the same IEEE 754
// double, as ECMAScript's Number.prototype.toString writes it (plain
// digits from 1e-6 up to but excluding 1e21, else d.ddde±x; -0 is 0).
// encoding/json writes float64 the same way (its encode.go says so).
func appendJCSNumber(dst, num []byte) ([]byte, error) {
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%w: number %s is out of range", ErrMalformed, num)
	}
	if f == 0 {
		return append(dst, '0'), nil
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7, as ECMAScript writes the exponent.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// compareUTF16 orders two valid UTF-8 strings by their UTF-16 code units
// (RFC 8785 section 3.2.3). It differs from byte order only where a
// character above U+FFFF meets one in U+E000..U+FFFF.
func compareUTF16(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if c := cmp.Compare(ua[0], ub[0]); c != 0 {
				return c
			}
			return cmp.Compare(ua[1], ub[1])
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// utf16Units returns r's UTF-16 code units (the second 0 in the BMP).
func utf16Units(r rune) [2]rune {
	if r < 0x10000 {
		return [2]rune{r, 0}
	}
	hi, lo := utf16.EncodeRune(r)
	return [2]rune{hi, lo}
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding with HTML escaping
// (encode.go appendString) for a valid UTF-8 string.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendByteEscape(dst, b)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
