package report

import (
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

// TestChangeLogShowsScriptHashes: the change log lists every script run
// of a change with its SHA-256 (it printed "Scripts (SHA-256) —" while
// the runs were not recorded; issue 15 item 3).
func TestChangeLogShowsScriptHashes(t *testing.T) {
	b := fixtureBundle()
	sum := strings.Repeat("0123456789abcdef", 4)
	b.Changes[0].Runs = []remediate.ScriptRun{{Script: "iis-write", SHA256: sum, ExitCode: 0}, {Script: "iis-read", SHA256: strings.Repeat("f", 64)}}
	b.Changes[0].Scripts = []string{sum, strings.Repeat("f", 64)}
	if got := changeScripts(&b.Changes[0]); got != "iis-write "+sum+" exit 0\niis-read "+strings.Repeat("f", 64)+" exit 0" {
		t.Errorf("change scripts cell %q", got)
	}
	data, _ := renderFixture(t, b, Options{})
	text := run(t, needTool(t, "pdftotext"), writeTemp(t, data), "-")
	if !strings.Contains(text, "iis-write") || !strings.Contains(text, sum[:32]) {
		t.Errorf("the change log does not show the script hashes:\n%s", text[strings.Index(text, "Scripts"):][:400])
	}
	old := fixtureBundle()
	old.Changes[0].Runs = nil
	if got := changeScripts(&old.Changes[0]); got != strings.Join(old.Changes[0].Scripts, "\n") {
		t.Errorf("evidence without runs: %q", got)
	}
}
