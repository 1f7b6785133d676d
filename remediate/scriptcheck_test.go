package remediate

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/templates"
)

// Static checks over every embedded PowerShell script (templates/powershell/*.ps1).
// They keep the scripts runnable on PowerShell 2.0 (Windows 2003 with
// WMF 2.0, 2008 R2 default; docs/windows-relay.md §0), free of code injection,
// ASCII only (psframe), and with the header STYLE.md lesson 6 asks for.
// The messages say what to use instead. The tree-sitter parse check is in
// psparse_test.go.

// psRule is one forbidden construct, matched on the code with comments and
// string contents blanked out (so a word inside a string or comment never
// matches).
type psRule struct {
	re  *regexp.Regexp
	msg string
}

var ps2Rules = []psRule{
	{regexp.MustCompile(`(?i)\bConvert(To|From)-Json\b`), "ConvertTo-Json/ConvertFrom-Json need PowerShell 3.0; print RL-Rec records instead"},
	{regexp.MustCompile(`(?i)\[\s*pscustomobject\s*\]`), "[pscustomobject] needs PowerShell 3.0; use New-Object PSObject -Property @{...}"},
	{regexp.MustCompile(`(?i)\[\s*ordered\s*\]`), "[ordered] needs PowerShell 3.0; use New-Object System.Collections.Specialized.OrderedDictionary"},
	{regexp.MustCompile(`(?i)\b(Get|New|Set|Remove|Invoke|Register)-Cim\w*`), "CIM cmdlets need PowerShell 3.0; use Get-WmiObject"},
	{regexp.MustCompile(`(?i)::new\s*\(`), "::new() needs PowerShell 5.0; use New-Object"},
	{regexp.MustCompile(`(?i)(^|[\s(])-(not)?in([\s(]|$)`), "-in/-notin need PowerShell 3.0; use -contains/-notcontains with the operands swapped"},
	{regexp.MustCompile(`(?i)\$PSItem\b`), "$PSItem needs PowerShell 3.0; use $_"},
	{regexp.MustCompile(`(?i)\.(Where|ForEach)\s*[({]`), ".Where()/.ForEach() need PowerShell 4.0; use Where-Object/ForEach-Object or foreach"},
	{regexp.MustCompile(`(?i)^\s*(class|enum)\s+\w+`), "class/enum need PowerShell 5.0"},
	{regexp.MustCompile(`(?i)^\s*using\s+(namespace|module|assembly)\b`), "using statements need PowerShell 5.0; write full type names"},
	{regexp.MustCompile(`(?i)\bInvoke-(RestMethod|WebRequest)\b`), "Invoke-RestMethod/Invoke-WebRequest need PowerShell 3.0 (and scripts must not fetch anything)"},
	{regexp.MustCompile(`(?i)\butf8(NoBOM|BOM)\b`), "-Encoding utf8NoBOM/utf8BOM need PowerShell 6; scripts write to stdout only"},
	{regexp.MustCompile(`\?\?`), "?? / ??= need PowerShell 7"},
	{regexp.MustCompile(`\?\.|\?\[`), "?. / ?[] need PowerShell 7"},
	{regexp.MustCompile(`&&|\|\|`), "&& / || pipeline chains need PowerShell 7; use if ($?) or -and/-or"},
	{regexp.MustCompile(`(?i)-ErrorAction\s+Ignore\b|-EA\s+Ignore\b`), "-ErrorAction Ignore needs PowerShell 3.0; use SilentlyContinue"},
	{regexp.MustCompile(`(?i)\bGet-Content\b[^|;\n]*\s-Raw\b`), "Get-Content -Raw needs PowerShell 3.0; use [IO.File]::ReadAllText"},
	{regexp.MustCompile(`(?i)\s-NoNewline\b`), "-NoNewline needs PowerShell 5.0; use [Console]::Out.Write"},
	{regexp.MustCompile(`(?i)\$using:`), "$using: needs PowerShell 3.0"},
	{regexp.MustCompile(`(?i)\$PSScriptRoot\b|\$PSCommandPath\b`), "$PSScriptRoot/$PSCommandPath are empty for scripts run from stdin (and 3.0+ outside modules)"},
	{regexp.MustCompile(`(?i)\$PSDefaultParameterValues\b`), "$PSDefaultParameterValues needs PowerShell 3.0"},
	{regexp.MustCompile(`(?i)\s-(shl|shr)\b`), "-shl/-shr need PowerShell 3.0; multiply or divide by powers of two"},
	{regexp.MustCompile(`(?i)\bWhere-Object\s+[^{\s-]`), "Where-Object Name -eq x (simplified syntax) needs PowerShell 3.0; use Where-Object { $_.Name -eq x }"},
	{regexp.MustCompile(`(?i)\bWhere-Object\s+-(?:Property|EQ|NE|Like|Match|Value)\b`), "Where-Object -Property ... needs PowerShell 3.0; use a script block"},
	{regexp.MustCompile(`(?i)\b(Get-FileHash|New-TemporaryFile|Compress-Archive|Expand-Archive|ConvertFrom-String|Get-Clipboard|Set-Clipboard)\b`), "this cmdlet needs PowerShell 4.0 or later"},
	{regexp.MustCompile(`(?i)\[\s*(System\.)?Environment\s*\]::Is64Bit(Process|OperatingSystem)\b`), "[Environment]::Is64BitProcess needs .NET 4 (PowerShell 2.0 runs on .NET 2); use [IntPtr]::Size -eq 8"},
}

var injectionRules = []psRule{
	{regexp.MustCompile(`(?i)\bInvoke-Expression\b`), "Invoke-Expression runs text as code: parameters must stay data (psframe)"},
	{regexp.MustCompile(`(?i)(^|[^\w-])iex\b`), "iex (Invoke-Expression) runs text as code: parameters must stay data (psframe)"},
	{regexp.MustCompile(`(?i)ScriptBlock\s*\]\s*::\s*Create\b`), "[ScriptBlock]::Create compiles text; only the psframe bootstrap may do that"},
	{regexp.MustCompile(`(?i)\bNewScriptBlock\b|\bInvokeScript\b`), "$ExecutionContext.InvokeCommand.NewScriptBlock/InvokeScript compile text into code"},
	{regexp.MustCompile(`(?i)(^|[\s;(=])[&.]\s*\(?\s*\$P\b`), "calling a command named by a parameter (& $P[...]) turns data into code"},
	{regexp.MustCompile(`(?i)\bAdd-Type\b[^\n]*\$P\b`), "Add-Type with parameter text compiles data into code"},
}

// stripPS blanks out comments and the contents of string literals (quotes
// kept, newlines kept so line numbers stay right).
func stripPS(src string) string {
	b := []byte(src)
	out := make([]byte, len(b))
	copy(out, b)
	blank := func(i int) {
		if out[i] != '\n' && out[i] != '\r' {
			out[i] = ' '
		}
	}
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '`' && i+1 < len(b):
			i += 2
		case c == '<' && i+1 < len(b) && b[i+1] == '#':
			end := strings.Index(src[i+2:], "#>")
			stop := len(b)
			if end >= 0 {
				stop = i + 2 + end + 2
			}
			for ; i < stop; i++ {
				blank(i)
			}
		case c == '#':
			for ; i < len(b) && b[i] != '\n'; i++ {
				blank(i)
			}
		case c == '@' && i+1 < len(b) && (b[i+1] == '\'' || b[i+1] == '"') && hereStringStart(b, i+2):
			term := "\n" + string(b[i+1]) + "@"
			end := strings.Index(src[i+2:], term)
			stop := len(b)
			if end >= 0 {
				stop = i + 2 + end + 1
			}
			for j := i + 2; j < stop; j++ {
				blank(j)
			}
			i = stop + 2
		case c == '\'':
			j := i + 1
			for j < len(b) {
				if b[j] == '\'' {
					if j+1 < len(b) && b[j+1] == '\'' {
						blank(j)
						blank(j + 1)
						j += 2
						continue
					}
					break
				}
				blank(j)
				j++
			}
			i = j + 1
		case c == '"':
			j := i + 1
			for j < len(b) {
				if b[j] == '`' && j+1 < len(b) {
					blank(j)
					blank(j + 1)
					j += 2
					continue
				}
				if b[j] == '"' {
					if j+1 < len(b) && b[j+1] == '"' {
						blank(j)
						blank(j + 1)
						j += 2
						continue
					}
					break
				}
				blank(j)
				j++
			}
			i = j + 1
		default:
			i++
		}
	}
	return string(out)
}

func hereStringStart(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\r':
		case '\n':
			return true
		default:
			return false
		}
	}
	return false
}

var (
	reHeaderMode = regexp.MustCompile(`(?i)\bMode:\s*(read|write)\b`)
	reHeaderProd = regexp.MustCompile(`(?i)\bProduct:\s*\S`)
	reHeaderIdem = regexp.MustCompile(`(?i)idempoten`)
	reTopRLEnd   = regexp.MustCompile(`^RL-End\s+\S+\s*$`)
	reTernary    = regexp.MustCompile(`[^|\s]\s+\?\s+[^\s{]`)
)

// checkScript returns the problems of one script, as "file:line: message".
func checkScript(name, src string) []string {
	file := "templates/powershell/" + name + ".ps1"
	var probs []string
	addf := func(line int, format string, a ...any) {
		probs = append(probs, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, a...)))
	}
	// (d) ASCII only: scripts travel base64-encoded UTF-8, but PowerShell 2.0
	// on a non-UTF-8 code page and the lab's byte-exact matching must not
	// depend on it.
	line := 1
	for _, r := range src {
		if r == '\n' {
			line++
		}
		if r > 0x7e || (r < 0x20 && r != '\n' && r != '\r' && r != '\t') {
			addf(line, "non-ASCII or control character %U; scripts must be ASCII (use [char]0xNN)", r)
			break
		}
	}
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	// (a) header: the leading comment block names the script, the product,
	// the mode (read|write) and says whether it is idempotent.
	if name != templates.PrologueName {
		var hdr []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "#") {
				break
			}
			hdr = append(hdr, l)
		}
		h := strings.Join(hdr, "\n")
		switch {
		case len(hdr) == 0:
			addf(1, "no header comment: start with lines '# %s: what it does', '# Product: ...', '# Mode: read|write', '# Idempotent: ...'", name)
		default:
			if !strings.HasPrefix(hdr[0], "# "+name+":") && !regexp.MustCompile(`(?im)^#\s*Name:\s*`+regexp.QuoteMeta(name)+`\s*$`).MatchString(h) {
				addf(1, "header does not name the script: first line '# %s: ...' or a line '# Name: %s'", name, name)
			}
			if !reHeaderProd.MatchString(h) {
				addf(1, "header has no 'Product:' line (IIS-SMTP, Exchange2003, Exchange, all)")
			}
			if !reHeaderMode.MatchString(h) {
				addf(1, "header has no 'Mode: read' or 'Mode: write'")
			}
			if !reHeaderIdem.MatchString(h) {
				addf(1, "header has no idempotency note ('Idempotent: ...' / 'Idempotency: ...')")
			}
		}
	}
	// (b), (c) on code without comments and string contents.
	code := strings.Split(strings.ReplaceAll(stripPS(src), "\r\n", "\n"), "\n")
	for i, l := range code {
		for _, r := range ps2Rules {
			if r.re.MatchString(l) {
				addf(i+1, "%s: %s", r.msg, strings.TrimSpace(lines[i]))
			}
		}
		if reTernary.MatchString(l) && !strings.Contains(l, "-match") {
			addf(i+1, "ternary 'a ? b : c' needs PowerShell 7; use if/else: %s", strings.TrimSpace(lines[i]))
		}
		for _, r := range injectionRules {
			if r.re.MatchString(l) {
				addf(i+1, "%s: %s", r.msg, strings.TrimSpace(lines[i]))
			}
		}
	}
	// (e) the normal path ends with RL-End at top level (the last code line).
	if name != templates.PrologueName {
		last := ""
		lastN := 0
		for i, l := range code {
			if strings.TrimSpace(l) != "" {
				last, lastN = strings.TrimRight(l, " \t\r"), i+1
			}
		}
		if !reTopRLEnd.MatchString(last) {
			addf(lastN, "the script must end with a top-level 'RL-End <code>' line (found %q)", strings.TrimSpace(last))
		}
	}
	return probs
}

func TestEmbeddedScripts(t *testing.T) {
	names := append([]string{templates.PrologueName}, templates.ScriptNames()...)
	if len(names) < 2 {
		t.Fatal("no scripts embedded")
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			src, err := templates.Script(n)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range checkScript(n, src) {
				t.Error(p)
			}
		})
	}
}

// TestScriptCheckerCatches proves each rule fires on a bad snippet and
// stays quiet on look-alikes that are fine.
func TestScriptCheckerCatches(t *testing.T) {
	const hdr = "# t: test\n# Product: all\n# Mode: read\n# Idempotent: yes\n"
	tests := []struct {
		name, body string
		want       string // "" = no problem
	}{
		{"ok", "$a = 1\nRL-End 0\n", ""},
		{"json", "$j = $x | ConvertTo-Json\nRL-End 0", "ConvertTo-Json"},
		{"pscustomobject", "$o = [PSCustomObject]@{a=1}\nRL-End 0", "[pscustomobject]"},
		{"ordered", "$o = [ordered]@{}\nRL-End 0", "[ordered]"},
		{"cim", "$s = Get-CimInstance Win32_Service\nRL-End 0", "CIM cmdlets"},
		{"new", "$l = [Collections.ArrayList]::new()\nRL-End 0", "::new()"},
		{"in", "if ($a -in $list) { }\nRL-End 0", "-in/-notin"},
		{"notin", "if ($a -notin @(1,2)) { }\nRL-End 0", "-in/-notin"},
		{"include is fine", "Get-ChildItem -Include *.x\nRL-End 0", ""},
		{"in inside string is fine", "$s = 'a -in b'\n$t = \"x -in y\"\nRL-End 0", ""},
		{"psitem", "$x | ForEach-Object { $PSItem }\nRL-End 0", "$PSItem"},
		{"where method", "$x.Where({ $_ })\nRL-End 0", ".Where()"},
		{"class", "class Foo { }\nRL-End 0", "class/enum"},
		{"using", "using namespace System.IO\nRL-End 0", "using statements"},
		{"rest", "Invoke-WebRequest http://x\nRL-End 0", "Invoke-RestMethod"},
		{"utf8nobom", "Out-File -Encoding utf8NoBOM x\nRL-End 0", "utf8NoBOM"},
		{"coalesce", "$a = $b ?? 1\nRL-End 0", "??"},
		{"ternary", "$a = $b ? 1 : 2\nRL-End 0", "ternary"},
		{"where alias is fine", "$x | ? { $_ } | % { $_ }\nRL-End 0", ""},
		{"chain", "Stop-Service x && Start-Service x\nRL-End 0", "pipeline chains"},
		{"ignore", "Get-Item x -ErrorAction Ignore\nRL-End 0", "-ErrorAction Ignore"},
		{"raw", "$t = Get-Content C:\\x -Raw\nRL-End 0", "Get-Content -Raw"},
		{"where simplified", "$s | Where-Object Name -eq 'x'\nRL-End 0", "simplified syntax"},
		{"is64", "$b = [Environment]::Is64BitProcess\nRL-End 0", "Is64BitProcess"},
		{"iex", "iex $P['x']\nRL-End 0", "iex"},
		{"invoke-expression", "Invoke-Expression ('Get-Item ' + $P['x'])\nRL-End 0", "Invoke-Expression"},
		{"scriptblock create", "$sb = [ScriptBlock]::Create($P['x'])\nRL-End 0", "[ScriptBlock]::Create"},
		{"call param", "& $P['cmd']\nRL-End 0", "& $P[...]"},
		{"comment mentions iex", "# never use iex or Invoke-Expression here\nRL-End 0", ""},
		{"non-ascii", "$s = 'caf\u00e9'\nRL-End 0", "non-ASCII"},
		{"no rl-end", "$a = 1\n", "must end with a top-level 'RL-End"},
		{"rl-end only nested", "if ($a) {\n    RL-End 0\n}\n", "must end with a top-level 'RL-End"},
		{"here-string", "$h = @'\n-in ?? iex\n'@\nRL-End 0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs := checkScript("t", hdr+tt.body)
			got := strings.Join(probs, "\n")
			if tt.want == "" {
				if got != "" {
					t.Errorf("unexpected problems:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("problems:\n%s\nwant one mentioning %q", got, tt.want)
			}
		})
	}
	headers := []struct{ src, want string }{
		{"$a = 1\nRL-End 0", "no header comment"},
		{"# t: x\n# Product: all\n# Idempotent: yes\nRL-End 0", "Mode: read"},
		{"# t: x\n# Mode: write\n# Idempotent: yes\nRL-End 0", "Product:"},
		{"# t: x\n# Product: all\n# Mode: read\nRL-End 0", "idempotency"},
		{"# other: x\n# Product: all\n# Mode: read\n# Idempotent: yes\nRL-End 0", "does not name the script"},
		{"# something\n# Name: t\n# Product: all\n# Mode: read. Idempotent: yes\nRL-End 0", ""},
	}
	for _, h := range headers {
		got := strings.Join(checkScript("t", h.src), "\n")
		if (h.want == "") != (got == "") || !strings.Contains(got, h.want) {
			t.Errorf("header %q: problems %q, want %q", h.src, got, h.want)
		}
	}
}
