package audit

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// tokenEncoding is lower-case base32 without padding: safe in local parts,
// host labels and Subject lines, and case-insensitive servers cannot
// corrupt it.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a random token: "rl" and 16 lower-case letters and
// digits (80 bits from crypto/rand), used for random local parts ({u}, {rand}) and
// message tokens.
func NewToken() string {
	var b [10]byte
	rand.Read(b[:]) // never returns an error since Go 1.24 (it aborts the program instead)
	return "rl" + strings.ToLower(tokenEncoding.EncodeToString(b[:]))
}
