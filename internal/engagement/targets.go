package engagement

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/relaylock/relaylock/audit"
)

// targetEntry is one line of a --targets file.
type targetEntry struct {
	Line      int    // 1-based line number in the file
	Target    string // domain, host or address, optional :port
	Client    string // CSV only
	WinRMHost string // CSV only, optional
}

// errTargetsFile marks a malformed --targets file; the message names the
// line.
var errTargetsFile = errors.New("targets file")

// maxTargetLine bounds one line of a --targets file.
const maxTargetLine = 4096

// parseTargets reads a --targets file: one TARGET per line, or CSV with
// the columns client, domain and an optional WinRM host (the file is CSV
// when its first data line has a comma; a header row "client,domain[,
// winrm...]" is skipped). "#" starts a comment (whole line or after the
// fields), blank lines are skipped, fields are trimmed. Every target is
// checked as `relaylock audit TARGET` would check it, and a target named
// twice is an error (it would be probed twice and counted twice).
func parseTargets(r io.Reader) ([]targetEntry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxTargetLine)
	var out []targetEntry
	csv, decided := false, false
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a BOM from spreadsheet exports
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !decided {
			decided, csv = true, strings.Contains(line, ",")
			if csv && isTargetsHeader(line) {
				continue
			}
		}
		e := targetEntry{Line: n}
		if csv {
			f := strings.Split(line, ",")
			for i := range f {
				f[i] = strings.TrimSpace(strings.Trim(strings.TrimSpace(f[i]), `"`))
			}
			if len(f) < 2 || len(f) > 3 {
				return nil, fmt.Errorf("%w: line %d: want client,domain[,winrm-host], got %d fields", errTargetsFile, n, len(f))
			}
			e.Client, e.Target = f[0], f[1]
			if len(f) == 3 {
				e.WinRMHost = f[2]
			}
			if e.Client == "" {
				return nil, fmt.Errorf("%w: line %d: empty client", errTargetsFile, n)
			}
			if strings.ContainsAny(e.Client+e.WinRMHost, "\x00\r\n\t") {
				return nil, fmt.Errorf("%w: line %d: control character in a field", errTargetsFile, n)
			}
			if e.WinRMHost != "" && strings.ContainsAny(e.WinRMHost, " /@") {
				return nil, fmt.Errorf("%w: line %d: bad WinRM host %q", errTargetsFile, n, e.WinRMHost)
			}
		} else {
			if strings.Contains(line, ",") {
				return nil, fmt.Errorf("%w: line %d: a comma, but the file's first line has none (CSV needs client,domain on every line)", errTargetsFile, n)
			}
			e.Target = line
		}
		if e.Target == "" {
			return nil, fmt.Errorf("%w: line %d: empty target", errTargetsFile, n)
		}
		if err := audit.CheckTarget(e.Target); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", errTargetsFile, n, err)
		}
		key := strings.ToLower(strings.TrimSuffix(e.Target, "."))
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w: line %d: target %s already on line %d", errTargetsFile, n, e.Target, first)
		}
		seen[key] = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: a line is longer than %d bytes", errTargetsFile, maxTargetLine)
		}
		return nil, fmt.Errorf("%w: %w", errTargetsFile, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no targets", errTargetsFile)
	}
	return out, nil
}

// isTargetsHeader reports whether a CSV line is the header row.
func isTargetsHeader(line string) bool {
	f := strings.Split(strings.ToLower(line), ",")
	return len(f) >= 2 && strings.Trim(strings.TrimSpace(f[0]), `"`) == "client" && strings.Trim(strings.TrimSpace(f[1]), `"`) == "domain"
}
