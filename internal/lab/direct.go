package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

// DirectRunner runs scripts against a lab Host without WinRM: it builds
// the same payload the WinRM runner sends and decodes the same framed
// output, so platform drivers can be tested fast and the framing is still
// exercised. End-to-end tests use the WS-Man face instead.
type DirectRunner struct {
	Host Host
	// Fail, when set, is called before each script; a non-nil error fails
	// the run as a dropped connection would (fault injection).
	Fail func(script string, params map[string]string) error
	// Directory is the account AD and the Exchange shell accept
	// (DefaultDirectory when empty). Hop is the second-hop credential the
	// runner sends, as remediate.WinRMRunner does: Directory's account
	// when empty, unless NoHop is set (a runner with no credential to
	// pass, as relaylock before issue 14).
	Directory Directory
	Hop       remediate.HopCredential
	NoHop     bool
	// Conditions are the host's conditions (doctor.go); the zero value
	// is a host at WinRM's defaults, so a WinRM 2.0 host ends the
	// Exchange shell's scripts at 150 MB (memquota.go) unless they raise
	// MaxMemoryPerShellMB.
	Conditions HostConditions
}

// Run implements remediate.Runner.
func (d *DirectRunner) Run(ctx context.Context, script string, params map[string]string) (*remediate.ScriptRun, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := templates.FullScript(script)
	if err != nil {
		return nil, err
	}
	p := map[string]string{}
	for k, v := range params {
		p[k] = v
	}
	nonce := newNonce()
	p[psframe.NonceParam] = nonce
	dir := d.Directory
	if dir.User == "" {
		dir = DefaultDirectory
	}
	hop := d.Hop
	if !hop.Set() && !d.NoHop {
		hop = remediate.HopCredential{User: dir.User, Password: dir.Password}
	}
	if d.NoHop {
		hop = remediate.HopCredential{}
	}
	remediate.AddHopParams(p, script, hop)
	sum := sha256.Sum256([]byte(full))
	run := &remediate.ScriptRun{Script: script, SHA256: hex.EncodeToString(sum[:]), Params: remediate.RecordedParams(params),
		Start: time.Now().UTC(), Hop: remediate.HopNote(script, hop)}
	if d.Fail != nil {
		if err := d.Fail(script, params); err != nil {
			run.End = time.Now().UTC()
			return run, fmt.Errorf("run %s: %w", script, err)
		}
	}
	stdout, stderr, code := DispatchWith(withDirectory(d.Host, dir), d.Conditions, psframe.CommandLine(), psframe.EncodePayload(full, p))
	run.End = time.Now().UTC()
	run.Stdout, run.Stderr, run.ExitCode = string(stdout), string(stderr), code
	out, err := psframe.DecodeOutput(nonce, stdout)
	if err != nil {
		return run, fmt.Errorf("run %s: %w", script, err)
	}
	run.Output = out
	for _, e := range remediate.ScriptErrors(out) {
		run.Errors = append(run.Errors, e.String())
	}
	return run, nil
}

func newNonce() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
