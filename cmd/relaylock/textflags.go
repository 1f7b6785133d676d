package main

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

// checkFlagText refuses (exit 2) a flag value with a control character,
// a bidi control or invalid UTF-8. Values such as --ticket and --client go
// into the evidence, the PDF, the change record on the host and printed
// commands; a control character there is a paste accident or an attack on
// whoever reads the output later (an ESC sequence rewriting their
// terminal, a CR hiding the start of a line), never a real ticket or name.
// Refusing it at once, before anything is recorded, is simpler and safer
// than escaping it in every place the value is shown. Hidden flags
// (--winrm-password, refused anyway) are skipped so that no secret is
// looked at.
func checkFlagText(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if vf, ok := f.(cli.VisibleFlag); (ok && !vf.IsVisible()) || !c.IsSet(name) || ownTextRules[name] {
			continue
		}
		var vals []string
		switch f.(type) {
		case *cli.StringFlag, *cli.PathFlag:
			vals = []string{c.String(name)}
		case *cli.StringSliceFlag:
			vals = c.StringSlice(name)
		default:
			continue
		}
		for _, v := range vals {
			if err := textValueError(v); err != nil {
				return usagef("--%s: %v", name, err)
			}
		}
	}
	return nil
}

// ownTextRules are the flags whose values are checked by stricter rules
// of their own, which refuse control characters too (exit 2) and say
// which rule: --connector-name (the characters Exchange can store).
var ownTextRules = map[string]bool{"connector-name": true}

// textValueError says where s holds a character no flag value may hold.
func textValueError(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return fmt.Errorf("invalid UTF-8 (byte 0x%02x at offset %d)", s[i], i)
			}
		case unicode.IsControl(r):
			return fmt.Errorf("a control character (U+%04X) at offset %d is not allowed", r, i)
		case isBidiControl(r):
			return fmt.Errorf("a bidi control character (U+%04X) at offset %d is not allowed: it reorders how the value is shown", r, i)
		}
	}
	return nil
}

// isBidiControl reports the characters that change the display order
// (Unicode Standard Annex #9, explicit directional formatting).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200E || r == 0x200F || r == 0x061C
}

// printableLines writes each line through audit.Printable.
type printableLines = engagement.PrintableLines
