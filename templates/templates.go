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
//go:embed powershell/*.ps1 report
var FS embed.FS

// PrologueName is the script prepended to every other script.
const PrologueName = "prologue"

// Script returns the source of powershell/<name>.ps1.
func Script(name string) (string, error) {
	b, err := FS.ReadFile("powershell/" + name + ".ps1")
	if err != nil {
		return "", fmt.Errorf("script %s: %w", name, err)
	}
	return string(b), nil
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
		n := strings.TrimSuffix(e.Name(), ".ps1")
		if n != PrologueName {
			names = append(names, n)
		}
	}
	return names
}
