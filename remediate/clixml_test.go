package remediate

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// A real PowerShell 5.1 stderr for `Get-Item C:\nope` under -NonInteractive
// with redirected streams (progress record first, then the error split
// over several <S S="Error"> lines).
const clixmlSample = "#< CLIXML\r\n" +
	`<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>` +
	`<S S="Error">Get-Item : Cannot find path 'C:\nope' because it does not exist._x000D__x000A_</S>` +
	`<S S="Error">At line:1 char:1_x000D__x000A_</S><S S="Error">+ Get-Item C:\nope_x000D__x000A_</S><S S="Error">+ ~~~~~~~~~~~~~~~~_x000D__x000A_</S>` +
	`<S S="Error">    + CategoryInfo          : ObjectNotFound: (C:\nope:String) [Get-Item], ItemNotFoundException_x000D__x000A_</S>` +
	`<S S="Error">    + FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand_x000D__x000A_</S>` +
	`<S S="Error"> _x000D__x000A_</S><S S="Warning">just a warning_x000D__x000A_</S></Objs>`

func TestCLIXMLMessages(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"plain text", "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n",
			[]string{"'foo' is not recognized as an internal or external command,", "operable program or batch file."}},
		{"error record", clixmlSample, []string{
			"Get-Item : Cannot find path 'C:\\nope' because it does not exist.",
			"At line:1 char:1",
			"+ Get-Item C:\\nope",
		}},
		{"progress only", "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><MS><PR N=\"Record\"><AV>Preparing modules for first use.</AV></PR></MS></Obj></Objs>", nil},
		{"two documents", "#< CLIXML\r\n<Objs><S S=\"Error\">one_x000A_</S></Objs>#< CLIXML\r\n<Objs><S S=\"Error\">two</S></Objs>", []string{"one", "two"}},
		{"escapes", "#< CLIXML\r\n<Objs><S S=\"Error\">tab_x0009_x _x005F_x0041_ caf_x00E9_ _xD83D__xDE00_ &lt;b&gt;</S></Objs>",
			[]string{"tab\tx _x0041_ caf\u00e9 \U0001F600 <b>"}},
		{"truncated xml", "#< CLIXML\r\n<Objs><S S=\"Error\">cut here", []string{"cut here"}},
		{"text before", "warning line\r\n#< CLIXML\r\n<Objs><S S=\"Error\">boom</S></Objs>", []string{"warning line", "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CLIXMLMessages(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CLIXMLMessages = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzCLIXML(f *testing.F) {
	f.Add(clixmlSample)
	f.Add("#< CLIXML\r\n<Objs><S S=\"Error\">_xD800_ _x0000_ _xFFFF_</S></Objs>")
	f.Add("#< CLIXML#< CLIXML<S S=\"Error\"><S S=\"Error\">x</S>")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range CLIXMLMessages(s) {
			if m == "" || m != strings.TrimSpace(m) {
				t.Errorf("message %q not trimmed or empty", m)
			}
			if strings.ContainsAny(m, "\r\n") {
				t.Errorf("message %q spans lines", m)
			}
			if !utf8.ValidString(m) {
				t.Errorf("message %q is not UTF-8", m)
			}
		}
	})
}
