package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Strict reading. encoding/json matches object keys to struct fields
// without regard to case and lets a repeated key overwrite the earlier
// one, so `"result": {...}, "Result": null` decodes as no result while a
// hash over the text can still see the first. An evidence file is
// therefore checked before it is decoded, against the Go types it decodes
// into, and refused when:
//
//   - an object holds two keys that are equal ignoring case (in any
//     object, maps and raw sub-documents included: the drivers decode
//     those into structs later);
//   - a key of a struct-typed object is not exactly a field's JSON name
//     (a case variant is malformed; an unknown name is a field from a
//     newer relaylock, ErrNewerFields);
//   - a string is not valid UTF-8 or holds an unpaired surrogate escape
//     (RFC 7493 section 2.1), which decoding would silently turn into
//     U+FFFD;
//   - a number is out of range for an IEEE 754 double, or is an integer
//     beyond ±2^53 (RFC 7493 section 2.2), so that the hash's number form
//     (RFC 8785 section 3.2.2.3) is the value that is decoded.
//
// What passes decodes to exactly what the section hashes cover.

// maxExactInt is 2^53, the largest integer every JSON reader holds exactly.
const maxExactInt = 1 << 53

// strictError is a strict-reading failure at a path in the document.
type strictError struct {
	path []string // innermost last, built while unwinding
	err  error
}

func (e *strictError) Error() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		p := e.path[i]
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	if b.Len() == 0 {
		return e.err.Error()
	}
	return b.String() + ": " + e.err.Error()
}

func (e *strictError) Unwrap() error { return e.err }

func at(err error, seg string) error {
	var se *strictError
	if errors.As(err, &se) {
		se.path = append(se.path, seg)
		return se
	}
	return &strictError{path: []string{seg}, err: err}
}

// checkStrict checks data, which must be valid JSON, against the type of
// v (a pointer to the value it will be decoded into). With tolerant,
// unknown field names pass (a file from a newer build, for verify), but
// case variants of known ones do not.
func checkStrict(data []byte, v any, tolerant bool) error {
	s := strictScanner{canonWriter: canonWriter{data: data}, tolerant: tolerant}
	_, err := s.value(s.ws(0), reflect.TypeOf(v))
	if err != nil {
		var se *strictError
		if !errors.As(err, &se) {
			err = &strictError{err: err}
		}
	}
	return err
}

type strictScanner struct {
	canonWriter // for ws, skipString, skipNumber, decodeKey
	tolerant    bool
	keys        [][]byte // reused: the keys of the objects being walked
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// value checks the value at i against t (nil: any JSON) and returns the
// index after it.
func (s *strictScanner) value(i int, t reflect.Type) (int, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || t.Kind() == reflect.Interface) {
		t = nil // checked as plain JSON; the type decodes it itself
	}
	d := s.data
	switch d[i] {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		return s.object(i, fields, elem)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		j := s.ws(i + 1)
		if d[j] == ']' {
			return j + 1, nil
		}
		for n := 0; ; n++ {
			end, err := s.value(j, elem)
			if err != nil {
				return 0, at(err, fmt.Sprintf("[%d]", n))
			}
			j = s.ws(end)
			if d[j] == ']' {
				return j + 1, nil
			}
			j = s.ws(j + 1)
		}
	case '"':
		end := s.skipString(i)
		if err := checkString(d[i+1 : end-1]); err != nil {
			return 0, err
		}
		return end, nil
	case 't', 'n':
		return i + 4, nil
	case 'f':
		return i + 5, nil
	default:
		end := s.skipNumber(i)
		if err := checkNumber(d[i:end]); err != nil {
			return 0, err
		}
		return end, nil
	}
}

// object checks an object: no two keys equal ignoring case; with fields
// (a struct), every key exactly a field name; values checked against the
// field's type, or elem for a map.
func (s *strictScanner) object(i int, fields map[string]reflect.Type, elem reflect.Type) (int, error) {
	d := s.data
	j := s.ws(i + 1)
	if d[j] == '}' {
		return j + 1, nil
	}
	keys := s.keys[:0]
	for {
		kend := s.skipString(j)
		if err := checkString(d[j+1 : kend-1]); err != nil {
			return 0, err
		}
		key := s.decodeKey(j, kend)
		for _, k := range keys {
			if bytes.EqualFold(k, key) {
				if bytes.Equal(k, key) {
					return 0, fmt.Errorf("%w: duplicate key %q", ErrMalformed, key)
				}
				return 0, fmt.Errorf("%w: keys %q and %q differ only in case", ErrMalformed, k, key)
			}
		}
		keys = append(keys, key)
		vt := elem
		if fields != nil {
			ft, ok := fields[string(key)]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, string(key)) {
						return 0, at(fmt.Errorf("%w: key %q must be spelt %q", ErrMalformed, key, name), string(key))
					}
				}
				if !s.tolerant {
					return 0, at(fmt.Errorf("%w: unknown field %q", ErrNewerFields, key), string(key))
				}
			}
			vt = ft
		}
		j = s.ws(s.ws(kend) + 1)  // ':'
		s.keys = keys[len(keys):] // the values' objects list their keys after ours
		end, err := s.value(j, vt)
		s.keys = keys
		if err != nil {
			return 0, at(err, string(key))
		}
		j = s.ws(end)
		if d[j] == '}' {
			return j + 1, nil
		}
		j = s.ws(j + 1) // ','
	}
}

// checkString checks a string's body (between the quotes): valid UTF-8,
// no unpaired surrogate escape.
func checkString(raw []byte) error {
	if plain(raw) {
		return nil
	}
	for i := 0; i < len(raw); {
		b := raw[i]
		switch {
		case b == '\\':
			if raw[i+1] != 'u' {
				i += 2
				continue
			}
			r := hex4(raw[i+2 : i+6])
			i += 6
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return fmt.Errorf("%w: unpaired surrogate \\u%04x in a string", ErrMalformed, r)
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
					return fmt.Errorf("%w: unpaired surrogate \\u%04x in a string", ErrMalformed, r)
				}
				lo := hex4(raw[i+2 : i+6])
				if utf16.DecodeRune(rune(r), rune(lo)) == utf8.RuneError {
					return fmt.Errorf("%w: unpaired surrogate \\u%04x in a string", ErrMalformed, r)
				}
				i += 6
			}
		case b < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Errorf("%w: invalid UTF-8 in a string", ErrMalformed)
			}
			i += size
		}
	}
	return nil
}

func hex4(b []byte) int {
	n, _ := strconv.ParseUint(string(b), 16, 32) // valid JSON: four hex digits
	return int(n)
}

// checkNumber refuses numbers a double cannot hold (RFC 7493 section 2.2).
func checkNumber(num []byte) error {
	if _, err := strconv.ParseFloat(string(num), 64); err != nil {
		return fmt.Errorf("%w: number %s is out of range", ErrMalformed, num)
	}
	for _, c := range num {
		if c == '.' || c == 'e' || c == 'E' {
			return nil
		}
	}
	if n, err := strconv.ParseInt(string(num), 10, 64); err != nil || n > maxExactInt || n < -maxExactInt {
		return fmt.Errorf("%w: integer %s is beyond ±2^53 (RFC 7493)", ErrMalformed, num)
	}
	return nil
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the JSON member names of a struct type and their
// types, as encoding/json sees them (tags, "-", embedded structs).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := out[name]; !dup {
				out[name] = ft
			}
		}
	}
	walk(t)
	fieldCache.Store(t, out)
	return out
}
