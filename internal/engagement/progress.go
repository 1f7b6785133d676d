package engagement

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/audit"
)

// progressBar draws one self-updating line on a terminal while targets are
// probed: a bar of finished targets, endpoints probed, and how many are
// open, closed or inconclusive so far. It replaces the engine's progress
// lines, which would scroll past by the hundred on a large run.
type progressBar struct {
	mu                  sync.Mutex
	w                   io.Writer
	total, done         int
	endpoints           int
	open, closed, incon int
	start               time.Time
	last                time.Time
	width               int
	drawn               bool
	now                 func() time.Time
	minInterval         time.Duration
	lastLen             int
	conc                audit.Concurrency // the in-flight bound, once known
}

// attachProgress hooks a progress bar into opts (keeping any callbacks
// already set) and returns a function that finishes the line.
func attachProgress(opts *audit.Options, w io.Writer) (finish func()) {
	p := &progressBar{w: w, total: len(opts.Targets), width: 24, now: time.Now, minInterval: 100 * time.Millisecond}
	p.start = p.now()
	prevEP, prevT := opts.OnEndpoint, opts.OnTarget
	opts.OnEndpoint = func(i int, ep audit.EndpointResult) {
		if prevEP != nil {
			prevEP(i, ep)
		}
		p.endpoint(ep)
	}
	opts.OnTarget = func(i int, tr audit.TargetResult) {
		if prevT != nil {
			prevT(i, tr)
		}
		p.target()
	}
	prevC := opts.OnConcurrency
	opts.OnConcurrency = func(st audit.Concurrency) {
		if prevC != nil {
			prevC(st)
		}
		p.mu.Lock()
		p.conc = st
		p.drawLocked(false)
		p.mu.Unlock()
	}
	opts.Progress = nil
	p.draw(true)
	return func() { p.finish() }
}

func (p *progressBar) endpoint(ep audit.EndpointResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endpoints++
	switch ep.Verdict {
	case audit.VerdictOpen:
		p.open++
	case audit.VerdictClosed:
		p.closed++
	default:
		p.incon++
	}
	p.drawLocked(false)
}

func (p *progressBar) target() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.drawLocked(p.done == p.total)
}

func (p *progressBar) draw(force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked(force)
}

func (p *progressBar) drawLocked(force bool) {
	now := p.now()
	if !force && now.Sub(p.last) < p.minInterval {
		return
	}
	p.last = now
	p.drawn = true
	line := p.line(now)
	pad := ""
	if n := p.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.lastLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// line renders the bar; it is plain ASCII so every terminal shows it.
func (p *progressBar) line(now time.Time) string {
	filled := 0
	if p.total > 0 {
		filled = p.done * p.width / p.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat("-", p.width-filled)
	conc := ""
	if p.conc.Max > 0 && p.done < p.total {
		conc = "; " + concurrencyText(p.conc)
	}
	return fmt.Sprintf("relaylock: [%s] %d/%d targets, %d endpoints: %d open, %d closed, %d inconclusive (%s)%s",
		bar, p.done, p.total, p.endpoints, p.open, p.closed, p.incon, now.Sub(p.start).Round(time.Second), conc)
}

func (p *progressBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		p.drawLocked(true)
		fmt.Fprintln(p.w)
	}
}

// runProbe runs an audit, with a progress bar when stderr is a terminal
// (auditOptions sets opts.Progress only then). The in-flight bound, when
// not given, is chosen here so that the operator is told what it is and
// why; a change of the bound (backing off, recovering) is on the bar, or
// a line of its own when stderr is not a terminal.
func runProbe(ctx context.Context, e *Env, opts audit.Options) (*audit.Result, error) {
	why := "--concurrency"
	if opts.Concurrency <= 0 {
		opts.Concurrency, why = audit.AutoConcurrency()
	}
	prev := opts.OnConcurrency
	var mu sync.Mutex
	first := true
	opts.OnConcurrency = func(st audit.Concurrency) {
		if prev != nil {
			prev(st)
		}
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return
		}
		if !e.StderrIsTerminal {
			fmt.Fprintf(e.Stderr, "relaylock: %s\n", concurrencyText(st))
		}
	}
	if opts.Progress != nil && e.StderrIsTerminal {
		fmt.Fprintf(e.Stderr, "relaylock: probing up to %d endpoints at once (%s), at most %d connections per address\n",
			opts.Concurrency, why, max(opts.PerHost, 1))
		finish := attachProgress(&opts, e.Stderr)
		defer finish()
	}
	return audit.Run(ctx, opts)
}

// concurrencyText says what the in-flight bound is doing.
func concurrencyText(st audit.Concurrency) string {
	if st.Reason == "" {
		return fmt.Sprintf("up to %d endpoints at once", st.Limit)
	}
	return fmt.Sprintf("up to %d of %d endpoints at once (%s)", st.Limit, st.Max, st.Reason)
}
