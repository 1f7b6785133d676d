// Package templates holds relaylock's embedded assets: the PowerShell
// scripts run on Windows hosts and the texts of the PDF report. It has no
// logic beyond reading them; --template DIR overrides the report texts.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

// FS holds every embedded asset.
//
//go:embed powershell/*.ps1 powershell/lib/*.ps1 report
var FS embed.FS

// PrologueName is the script prepended to every other script.
const PrologueName = "prologue"

// IncludePrefix starts a line that a script replaces with a shared
// fragment, powershell/lib/<name>.ps1, so that code several scripts need
// (the Exchange shell loader) is written once. It is a comment, so the
// raw file is still valid PowerShell.
const IncludePrefix = "# relaylock:include "

// Script returns the source of powershell/<name>.ps1 with its includes
// expanded: the text every check parses and the host runs.
func Script(name string) (string, error) {
	b, err := FS.ReadFile("powershell/" + name + ".ps1")
	if err != nil {
		return "", fmt.Errorf("script %s: %w", name, err)
	}
	return expand(name, string(b))
}

func expand(name, src string) (string, error) {
	if !strings.Contains(src, IncludePrefix) {
		return src, nil
	}
	lines := strings.SplitAfter(src, "\n")
	var out strings.Builder
	for _, l := range lines {
		frag, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), IncludePrefix)
		if !ok {
			out.WriteString(l)
			continue
		}
		if !validFragment(frag) {
			return "", fmt.Errorf("script %s: bad include %q", name, frag)
		}
		b, err := FS.ReadFile("powershell/lib/" + frag + ".ps1")
		if err != nil {
			return "", fmt.Errorf("script %s: include %s: %w", name, frag, err)
		}
		if strings.Contains(string(b), IncludePrefix) {
			return "", fmt.Errorf("script %s: include %s: fragments do not include others", name, frag)
		}
		out.Write(b)
	}
	return out.String(), nil
}

func validFragment(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// FullScript is what travels on stdin for script name: the prologue, then
// the script. The lab identifies a script by this exact text.
func FullScript(name string) (string, error) {
	pro, err := Script(PrologueName)
	if err != nil {
		return "", err
	}
	s, err := Script(name)
	if err != nil {
		return "", err
	}
	return pro + "\r\n" + s, nil
}

// ScriptNames lists every script except the prologue, sorted.
func ScriptNames() []string {
	ents, err := fs.ReadDir(FS, "powershell")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".ps1") {
			continue // powershell/lib holds fragments, not scripts
		}
		n := strings.TrimSuffix(e.Name(), ".ps1")
		if n != PrologueName {
			names = append(names, n)
		}
	}
	return names
}
