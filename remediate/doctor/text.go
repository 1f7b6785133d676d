package doctor

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the checklist: one line per check, its fix below a
// failure, and a summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "relaylock doctor: %s (%s, %s auth as %s)\n\n", r.Host, r.Endpoint, r.Auth, r.User)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %-15s %s\n", strings.ToUpper(string(c.Status)), c.ID, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(&b, "      %-15s fix: %s\n", "", c.Fix)
		}
	}
	pass, skip := 0, 0
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			pass++
		case Skip:
			skip++
		}
	}
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d skipped\n", pass, r.Failed(), skip)
	_, err := io.WriteString(w, b.String())
	return err
}

// LogLine is one check as a line of the evidence log.
func (c Check) LogLine() string {
	s := strings.ToUpper(string(c.Status)) + " " + c.ID + ": " + c.Detail
	if c.Fix != "" {
		s += " | fix: " + c.Fix
	}
	return s
}
