package engagement

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/report/evidence"
)

// readTargetsFile parses a --targets file; a malformed file is a usage
// error naming the line.
func readTargetsFile(path string) ([]targetEntry, error) {
	f, err := atomicfile.Open(path)
	if err != nil {
		return nil, Usagef("--targets: %v", err)
	}
	defer f.Close()
	entries, err := parseTargets(f)
	if err != nil {
		return nil, Usagef("--targets %s: %v", path, err)
	}
	return entries, nil
}

// scopeText names the targets in a log line, shortened for long lists.
func scopeText(ts []string) string {
	if len(ts) <= 5 {
		return strings.Join(ts, ", ")
	}
	return fmt.Sprintf("%s and %d more targets", strings.Join(ts[:3], ", "), len(ts)-3)
}

// auditJournaled runs a --targets audit that streams every finished
// target to the journal beside the evidence file (journal.go), keeps only
// summaries in memory, and, once every target is done, merges the journal
// into the evidence as one audit run and removes it. With --resume it
// first reads the journal and probes only the targets it lacks. On
// cancellation the journal stays for --resume and the error is returned
// with a nil result.
func auditJournaled(ctx context.Context, e *Env, o AuditOptions, opts audit.Options, entries []targetEntry) (*audit.Result, error) {
	started := time.Now()
	evPath, err := evidence.Resolve(o.Evidence.Path)
	if err != nil {
		return nil, err
	}
	jp := journalPath(evPath)
	sum, err := opts.Summary()
	if err != nil {
		return nil, Usagef("%v", err)
	}
	// One run per journal: a second run on a live journal would probe the
	// same targets, and removing the journal would destroy the first's.
	unlock, err := evidence.LockRun(jp + ".lock")
	if err != nil {
		return nil, fmt.Errorf("%w: %w\nhint: another relaylock is running this --targets audit; let it finish (or stop it, then continue with --resume)", errJournal, err)
	}
	defer unlock()
	exists, err := journalExists(jp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errJournal, err)
	}
	done := map[int]bool{}
	var w *journalWriter
	if o.Resume {
		if !exists {
			return nil, Usagef("--resume: no journal %s: the run finished (its results are in %s) or never started", jp, evPath)
		}
		st, err := scanJournal(jp, nil)
		if err != nil {
			return nil, err
		}
		if st.Header.TargetsSHA256 != targetsDigest(entries) || st.Header.Targets != len(entries) {
			return nil, Usagef("--resume: %s was written for another target list; resume with the same --targets file", jp)
		}
		if err := sameRunOptions(st.Header.Options, sum); err != nil {
			return nil, Usagef("--resume: %v", err)
		}
		done = st.Done
		if w, err = openJournal(jp, nil, st.Valid); err != nil {
			return nil, err
		}
		fmt.Fprintf(e.Stderr, "relaylock: resuming: %d of %d targets already done (%s)\n", len(done), len(entries), jp)
	} else {
		if exists {
			return nil, Usagef("%s exists: an earlier run was interrupted (no relaylock is running on it now); continue it with --resume, or remove the file to start over", jp)
		}
		h := &journalHeader{Journal: journalSchema, Started: time.Now().UTC(), TargetsSHA256: targetsDigest(entries),
			Targets: len(entries), Options: sum}
		if w, err = openJournal(jp, h, 0); err != nil {
			return nil, err
		}
	}
	var idx []int
	var rest []string
	for i, en := range entries {
		if !done[i] {
			idx = append(idx, i)
			rest = append(rest, en.Target)
		}
	}
	var res *audit.Result
	var runErr error
	if len(rest) > 0 {
		opts.Targets = rest
		opts.SummaryOnly = true
		opts.OnTarget = func(j int, tr audit.TargetResult) {
			i := idx[j]
			tr.Client, tr.WinRMHost = entries[i].Client, entries[i].WinRMHost
			w.add(i, tr)
		}
		res, runErr = runProbe(ctx, e, opts)
	}
	if cerr := w.close(); cerr != nil {
		return nil, cerr
	}
	if runErr != nil {
		if res == nil && errors.Is(runErr, audit.ErrBadTarget) {
			return nil, Usagef("%v", runErr)
		}
		if errors.Is(runErr, context.Canceled) {
			st, _ := scanJournal(jp, nil)
			n := 0
			if st != nil {
				n = len(st.Done)
			}
			fmt.Fprintf(e.Stderr, "relaylock: interrupted: %d of %d targets are done and kept in %s\nhint: run the same command with --resume to continue\n", n, len(entries), jp)
		}
		return nil, runErr
	}
	fmt.Fprintf(e.Stderr, "relaylock: all %d targets done (%s); merging %s into %s\n", len(entries),
		time.Since(started).Round(time.Millisecond), jp, evPath)
	// Text output prints summaries: the evidence then reads the whole
	// targets back from the journal one at a time. The JSON and CSV
	// outputs print every test, so they keep the whole targets.
	full := o.Format != "text"
	m, err := mergeJournal(jp, entries, res, idx, full)
	if err != nil {
		return nil, err
	}
	merged := m.Result
	all := make([]string, len(entries))
	for i, en := range entries {
		all[i] = en.Target
	}
	rec := newRecorder(ctx, e, o.Evidence, all)
	if err := rec.update(func(b *evidence.Bundle) {
		b.Audits = append(b.Audits, m.Evidence(evidence.PurposeAudit))
		msg := fmt.Sprintf("probed %s: %s", scopeText(all), merged.Verdict)
		if len(done) > 0 {
			msg += fmt.Sprintf(" (resumed: %d targets from the journal)", len(done))
		}
		rec.log(b, "audit", "", msg)
	}); err != nil {
		// Every target stays in the journal: --resume writes them.
		return merged, &evidenceWriteError{fmt.Errorf("%w\nhint: every target is kept in %s; once the evidence file can be written, run the same command with --resume to add them without probing again", err, jp)}
	}
	if err := os.Remove(jp); err != nil {
		return nil, fmt.Errorf("%w: merged into %s, but: %w", errJournal, evPath, err)
	}
	fmt.Fprintf(e.Stderr, "relaylock: evidence written (%s in all)\n", time.Since(started).Round(time.Millisecond))
	return merged, nil
}
