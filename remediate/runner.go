package remediate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

// DefaultMaxOutput bounds what one run may write to stdout and to stderr.
// Relaylock's scripts print a few KB; anything beyond is cut (and the
// frame check then fails rather than the client running out of memory).
const DefaultMaxOutput = 16 << 20

// WinRMRunner runs relaylock's embedded scripts on one Windows host over
// WinRM (WinRS, MS-WSMV 3.1.4): one shell per run, command line
// psframe.CommandLine(), script and parameters on stdin. It implements
// Runner and is safe for concurrent use.
type WinRMRunner struct {
	c *winrmTransport
	// MaxOutput bounds stdout and stderr of one run (DefaultMaxOutput if 0).
	MaxOutput int
}

// NewWinRMRunner checks cfg (after filling defaults) and prepares the
// transport; it does not connect. The warnings (certificate checks
// disabled, unencrypted transport) must be shown to the operator.
func NewWinRMRunner(cfg WinRMConfig) (*WinRMRunner, []string, error) {
	c, warnings, err := newWinRMTransport(cfg.WithDefaults())
	if err != nil {
		return nil, nil, err
	}
	return &WinRMRunner{c: c}, warnings, nil
}

// Close drops the runner's idle connections (authenticated NTLM
// connections included). The runner stays usable; it reconnects.
func (r *WinRMRunner) Close() error {
	r.c.close()
	return nil
}

// Host is the host this runner talks to.
func (r *WinRMRunner) Host() string { return r.c.cfg.Host }

// User is the WinRM user (for change records); never the password.
func (r *WinRMRunner) User() string { return r.c.cfg.User }

// Endpoint is the WS-Man URL, e.g. "https://mail.example.com:5986/wsman".
func (r *WinRMRunner) Endpoint() string { return r.c.cfg.url() }

var reParamName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// Run implements Runner. It returns the run (also on failure, for the
// evidence) and an error that is nil only when the script's result frame
// was complete and its exit code 0. Errors are classified: ErrAuth,
// ErrUnreachable, ErrTLS, ErrAccessDenied, ErrWinRM (transport);
// psframe.ErrFrame (no complete result); ErrScript, ErrFeatureMissing,
// ErrAccessDenied (the script failed); or ctx's error.
func (r *WinRMRunner) Run(ctx context.Context, script string, params map[string]string) (*ScriptRun, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := templates.FullScript(script)
	if err != nil {
		return nil, err
	}
	p := make(map[string]string, len(params)+1)
	for k, v := range params {
		if !reParamName.MatchString(k) {
			return nil, fmt.Errorf("run %s: parameter name %q: want a letter then letters, digits or _", script, k)
		}
		p[k] = v
	}
	nonce, err := runNonce()
	if err != nil {
		return nil, err
	}
	p[psframe.NonceParam] = nonce
	// The second-hop credential travels in the payload only (inside
	// HTTPS or NTLM sealing), never in the recorded parameters.
	hop := r.c.cfg.Hop()
	if ScriptNeedsHop(script) && hop.Set() && !r.c.cfg.encrypted() {
		return nil, kindErr(ErrConfig, nil, "run %s on %s: refusing to send the password of %s (the second hop) over an unencrypted WinRM connection (--winrm-allow-unencrypted): use HTTPS or NTLM message encryption (plain HTTP without --winrm-allow-unencrypted)",
			script, r.c.cfg.Host, hop.User)
	}
	AddHopParams(p, script, hop)
	sum := sha256.Sum256([]byte(full))
	run := &ScriptRun{Script: script, SHA256: hex.EncodeToString(sum[:]), Params: runParams(params), Start: time.Now().UTC(),
		Hop: HopNote(script, hop)}
	payload := psframe.EncodePayload(full, p)

	// The run has its own context so that a transport failure the
	// library would swallow (a failed stdin Send) ends it at once.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	rec := &postRecorder{abort: cancelRun}
	wc, err := r.c.winrmClient(runCtx, rec)
	if err != nil {
		return nil, err
	}
	max := r.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	// Output beyond max ends the run: a host streaming output without end
	// would otherwise keep it going forever.
	stdout, stderr := &capBuffer{max: max, onCut: cancelRun}, &capBuffer{max: max, onCut: cancelRun}
	// RunWithContextWithInput sends stdin, then EOF, while Receive runs
	// (RunWithString deadlocks with stdin-reading scripts in the 2021
	// version: docs/winrm.md §0.2; this version routes it through the same
	// function, but say what we mean).
	code, runErr := wc.RunWithContextWithInput(runCtx, psframe.CommandLine(), stdout, stderr, bytes.NewReader(payload))
	run.End = time.Now().UTC()
	run.Stdout, run.Stderr, run.ExitCode = DecodeConsole(stdout.Bytes()), DecodeConsole(stderr.Bytes()), code
	run.Errors = CLIXMLMessages(run.Stderr)
	host := r.c.cfg.Host
	if ctx.Err() != nil {
		return run, fmt.Errorf("run %s on %s: %w", script, host, ctx.Err())
	}
	if stdout.isCut() || stderr.isCut() {
		return run, frameErr(host, run, fmt.Errorf("%w: output cut at %d bytes (the host sent more); run abandoned", psframe.ErrFrame, max))
	}
	if runErr != nil {
		return run, fmt.Errorf("run %s on %s: %w", script, host, r.transportErr(ctx, rec, runErr))
	}
	out, ferr := psframe.DecodeOutput(nonce, []byte(run.Stdout))
	if ferr != nil {
		if terr := rec.err(); terr != nil {
			// A Send failed (the library ignores it) or similar: that is
			// the real cause of the missing frame.
			return run, fmt.Errorf("run %s on %s: %w", script, host, classifyTransport(ctx, r.c.cfg, terr))
		}
		if stdout.cut {
			ferr = fmt.Errorf("%w (stdout cut at %d bytes)", ferr, max)
		}
		return run, frameErr(host, run, ferr)
	}
	run.Output = out
	var recErrs []string
	for _, e := range ScriptErrors(out) {
		recErrs = append(recErrs, e.String())
	}
	run.Errors = append(recErrs, run.Errors...)
	if out.ExitCode != 0 && run.ExitCode == 0 {
		run.ExitCode = out.ExitCode
	}
	if err := CheckRun(host, run); err != nil {
		return run, err
	}
	return run, nil
}

func (r *WinRMRunner) transportErr(ctx context.Context, rec *postRecorder, err error) error {
	// The recorded error is the classified one from our transport; the
	// library may have wrapped or replaced it ("canceled", EOF → 16001).
	if terr := rec.err(); terr != nil {
		return classifyTransport(ctx, r.c.cfg, terr)
	}
	return classifyTransport(ctx, r.c.cfg, err)
}

// CheckRun returns nil when run ended with exit code 0, and otherwise the
// classified failure: ErrFeatureMissing or ErrAccessDenied when the
// messages say so, ErrScript else. Runners other than WinRMRunner (the
// lab's DirectRunner) can use it to behave the same.
func CheckRun(host string, run *ScriptRun) error {
	return classifyScript(host, run)
}

// runParams is the copy of a run's parameters kept as evidence: secret
// parameters (the second hop's credential) dropped, and anything else
// whose name looks secret redacted (redactParams).
func runParams(p map[string]string) map[string]string {
	p = RecordedParams(p)
	if len(p) == 0 {
		return nil
	}
	return redactParams(p)
}

func runNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// capBuffer keeps the first max bytes written and discards the rest
// without failing the write: the library copies output through io.Pipe,
// and a failing writer would leave its Receive loop blocked.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
	cut bool
	// onCut, if set, is called once when output is first cut.
	onCut func()
}

func (c *capBuffer) isCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	wasCut := c.cut
	defer func() {
		if c.cut && !wasCut && c.onCut != nil {
			c.onCut()
		}
	}()
	switch {
	case room <= 0:
		c.cut = c.cut || len(p) > 0
	case len(p) > room:
		c.buf.Write(p[:room])
		c.cut = true
	default:
		c.buf.Write(p)
	}
	return len(p), nil
}

// Bytes returns a copy of what was kept.
func (c *capBuffer) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf.Bytes()...)
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
