package report

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/relaylock/relaylock/remediate"
)

// Encoded values (hex and base64) say nothing to a reader, so the body of
// the report shows them decoded where they can be (a RelayIpList's
// IPSECLIST bytes as its address list, base64 text as the text) and moves
// the encoded form, exactly as recorded, to Appendix D, where each has an
// item number the body refers to.

// rawItem is one encoded value printed in Appendix D.
type rawItem struct {
	id    string // "D1"
	title string // where it was first seen
	text  string // as recorded
}

// rawRef registers an encoded value for Appendix D (once per distinct
// value: the same bytes seen in a setting, a change and a read-back are
// one item) and returns its item id.
func (r *renderer) rawRef(title, text string) string {
	if id, ok := r.rawByKey[text]; ok {
		return id
	}
	id := fmt.Sprintf("D%d", len(r.raws)+1)
	r.raws = append(r.raws, rawItem{id: id, title: title, text: text})
	r.rawByKey[text] = id
	return id
}

// value is a setting's value as the body shows it: decoded if it is an
// encoded blob, with a reference to its encoded form in Appendix D;
// anything else unchanged.
func (r *renderer) value(object, setting, v string) string {
	kind := blobKind(setting, v)
	if kind == "" {
		return v
	}
	id := r.rawRef(strings.TrimSpace(object+" "+setting), v)
	if kind == "hex" {
		raw, _ := hex.DecodeString(v)
		if strings.Contains(strings.ToLower(setting), "relayiplist") {
			if b, err := remediate.ParseRelayListBlob(v); err == nil {
				if l, err := b.Decode(); err == nil {
					return fmt.Sprintf(r.l("%s (decoded from %d bytes of IPSECLIST; hex in Appendix D, %s)"), l.Describe(), len(raw), id)
				}
			}
		}
		return fmt.Sprintf(r.l("%d bytes of binary data (hex in Appendix D, %s)"), len(raw), id)
	}
	raw, _ := base64.StdEncoding.DecodeString(v)
	if isText(raw) {
		return fmt.Sprintf(r.l("%s (decoded from base64; the encoded value is in Appendix D, %s)"), quoteValue(string(raw)), id)
	}
	return fmt.Sprintf(r.l("%d bytes of binary data (base64 in Appendix D, %s)"), len(raw), id)
}

// blobKind reports "hex" or "base64" for a value that is an encoded
// blob, else "". A setting named "*.raw" holds hex by contract
// (remediate.RelayListBlob); elsewhere only long runs count, so that
// thumbprints (40 hex digits), numbers and names stay as they are.
func blobKind(setting, v string) string {
	if strings.HasSuffix(setting, ".raw") && len(v) >= 2 && isHex(v) {
		return "hex"
	}
	if len(v) >= 48 && isHex(v) {
		return "hex"
	}
	if len(v) >= 24 && len(v)%4 == 0 && strings.ContainsAny(v, "0123456789+/=") && strings.ToLower(v) != v && strings.ToUpper(v) != v {
		if _, err := base64.StdEncoding.DecodeString(v); err == nil {
			return "base64"
		}
	}
	return ""
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// isText reports bytes that are UTF-8 text without control characters
// other than line breaks and tabs.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

// quoteValue quotes a decoded value; a value of several lines (the
// scripts' convention for a list) is shown as a list of quoted items.
func quoteValue(s string) string {
	if !strings.Contains(s, "\n") {
		return strconv.Quote(s)
	}
	items := splitLines(s)
	for i, it := range items {
		items[i] = strconv.Quote(it)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// decodeOutput rewrites a script's framed output (package psframe: "R
// type name=base64 ..." lines between BEGIN and END) with every field
// decoded and quoted ($null for "~"); a field that decodes to an encoded
// blob (a RelayIpList in hex) is shown decoded, as settings are. Lines
// that are not records, and fields that do not decode to text, stay as
// they are. ok is false when nothing was decoded.
func (r *renderer) decodeOutput(stdout string) (out string, ok bool) {
	lines := splitLines(stdout)
	for i, l := range lines {
		f := strings.Split(l, " ")
		if len(f) < 3 || f[0] != "R" {
			continue
		}
		object := ""
		for j, kv := range f[2:] {
			name, val, found := strings.Cut(kv, "=")
			if !found || name == "" {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(val)
			switch {
			case val == "~":
				f[j+2] = name + "=$null"
			case err == nil && isText(raw):
				v := string(raw)
				if name == "name" {
					object = v
				}
				if dec := r.value(object, name, v); dec != v {
					f[j+2] = name + "=<" + dec + ">"
				} else {
					f[j+2] = name + "=" + quoteValue(v)
				}
			default:
				continue
			}
			ok = true
		}
		lines[i] = strings.Join(f, " ")
	}
	return strings.Join(lines, "\n"), ok
}
