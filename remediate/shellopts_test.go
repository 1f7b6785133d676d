package remediate

import (
	"strings"
	"testing"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// The library hard-codes WINRS_CODEPAGE=65001 and
// WINRS_CONSOLEMODE_STDIN=TRUE; every request relaylock sends carries 437
// and FALSE instead, and is otherwise byte for byte what the library built.
func TestSetShellOptions(t *testing.T) {
	p := *winrm.DefaultParameters
	cmd := psframe.CommandLine() + ` & "<x>"`
	tests := []struct {
		name      string
		want      []string
		unchanged bool
	}{
		{name: "create", want: []string{`Name="WINRS_CODEPAGE">437</`, `Name="WINRS_NOPROFILE">FALSE</`}},
		{name: "command", want: []string{`Name="WINRS_CONSOLEMODE_STDIN">FALSE</`, `Name="WINRS_SKIP_CMD_SHELL">FALSE</`, "<![CDATA[" + cmd + "]]>"}},
		{name: "receive", unchanged: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := rebuild(t, tc.name, &p, cmd)
			before := msg.String()
			setShellOptions(msg)
			got := msg.String()
			if tc.unchanged {
				if got != before {
					t.Fatalf("changed a request without shell options:\n%s\n%s", before, got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			if strings.Contains(got, ">65001<") || strings.Contains(got, `CONSOLEMODE_STDIN">TRUE`) {
				t.Errorf("library option left:\n%s", got)
			}
			// Only the option values differ.
			norm := strings.NewReplacer(">437<", ">65001<", `CONSOLEMODE_STDIN">FALSE<`, `CONSOLEMODE_STDIN">TRUE<`).Replace(got)
			if norm != before {
				t.Errorf("rewrite changed more than the options:\nbefore %s\nafter  %s", before, got)
			}
		})
	}
}

func rebuild(t *testing.T, name string, p *winrm.Parameters, cmd string) *soap.SoapMessage {
	t.Helper()
	switch name {
	case "create":
		return winrm.NewOpenShellRequest("https://h:5986/wsman", p)
	case "command":
		return winrm.NewExecuteCommandRequest("https://h:5986/wsman", "SHELL-1", cmd, nil, p)
	}
	return winrm.NewGetOutputRequest("https://h:5986/wsman", "SHELL-1", "CMD-1", "stdout stderr", p)
}
