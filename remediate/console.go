package remediate

import (
	"golang.org/x/text/encoding/charmap"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// DecodeConsole turns what a WinRS command wrote into text. Shells run in
// code page psframe.ShellCodePage (437, see package psframe), so the bytes
// are code page 437: ASCII (the framed result, always) reads unchanged,
// and the rest of stderr (CLIXML error messages of a localized host, for
// example German umlauts) is decoded instead of being kept as invalid
// UTF-8. Characters outside code page 437 arrive as '?' from Windows
// itself; what a script reports travels base64 UTF-8 inside the frame.
func DecodeConsole(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	out, err := consoleCharmap().NewDecoder().Bytes(b)
	if err != nil { // cannot happen for a single-byte code page; keep the bytes
		return string(b)
	}
	return string(out)
}

func consoleCharmap() *charmap.Charmap {
	if psframe.ShellCodePage != "437" {
		panic("remediate: DecodeConsole knows code page 437 only; ShellCodePage is " + psframe.ShellCodePage)
	}
	return charmap.CodePage437
}
