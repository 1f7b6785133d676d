package main

import (
	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/cliargs"
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
	if err := cliargs.CheckText(c, ownTextRules); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// ownTextRules are the flags whose values are checked by stricter rules
// of their own, which refuse control characters too (exit 2) and say
// which rule: --connector-name (the characters Exchange can store).
var ownTextRules = map[string]bool{"connector-name": true}
