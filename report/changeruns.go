package report

import (
	"fmt"
	"strings"

	"github.com/relaylock/relaylock/remediate"
)

// changeScripts is the change log's "Scripts (SHA-256)" cell: one line
// per script run of the change, "script sha256 exit N", in order; for
// evidence written before runs were recorded, the bare hashes.
func changeScripts(c *remediate.ChangeRecord) string {
	if len(c.Runs) == 0 {
		return strings.Join(c.Scripts, "\n")
	}
	lines := make([]string, len(c.Runs))
	for i, r := range c.Runs {
		lines[i] = fmt.Sprintf("%s %s exit %d", r.Script, r.SHA256, r.ExitCode)
	}
	return strings.Join(lines, "\n")
}
