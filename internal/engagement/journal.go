package engagement

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/report/evidence"
)

// The audit journal: `relaylock audit --targets FILE --evidence EV` streams
// every finished target to EV.journal, an append-only JSON-lines file
// (mode 0600), and merges it into the evidence as one audit run when the
// last target is done.
//
// Why a journal and not evidence.Update per batch: the bundle is one JSON
// document that Update re-reads, re-parses, re-seals and rewrites whole,
// so streaming N targets through it costs O(N²). Measured on the bench
// (bench/relaybench, 1000 targets, about 140 KB of evidence each): one
// Update of the finished 140 MB bundle takes 6 s (load 2.4 s, seal and
// encode 3.6 s) and 900 MB, so rewriting every 50 targets would cost 20
// rewrites of 3 s on average, a minute, against 5 s of probing. An append
// costs O(record); the merge at the end is a single Update. The merge
// streams (mergeJournal): with text output the evidence encoder reads the
// targets back from the journal one at a time, so writing the evidence
// needs memory for one target and each target's summary, not for all.
//
// Durability: each record is one write(2) to a file opened O_APPEND, so a
// crash of relaylock (or Ctrl-C) loses no finished target; the file is
// fsynced at most a second after a write (and at the end), bounding what
// a power loss can take. A torn last line (power loss mid-write) is
// ignored and cut off on --resume.
//
// Line 1 is a journalHeader; every other line a journalRecord.
const journalSchema = "relaylock.audit-journal/v1"

type journalHeader struct {
	Journal string    `json:"journal"`
	Started time.Time `json:"started"`
	// TargetsSHA256 identifies the target list (one "target,client,winrm"
	// line each); --resume refuses a different list.
	TargetsSHA256 string               `json:"targets_sha256"`
	Targets       int                  `json:"targets"`
	Options       audit.OptionsSummary `json:"options"`
}

type journalRecord struct {
	// I is the target's index in the targets file (data lines only).
	I      int                `json:"i"`
	Time   time.Time          `json:"time"`
	Target audit.TargetResult `json:"target"`
}

var errJournal = errors.New("audit journal")

func journalPath(evidencePath string) string { return evidencePath + ".journal" }

func targetsDigest(ts []targetEntry) string {
	h := sha256.New()
	for _, t := range ts {
		fmt.Fprintf(h, "%s,%s,%s\n", t.Target, t.Client, t.WinRMHost)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// journalWriter appends records; safe for concurrent use.
type journalWriter struct {
	mu    sync.Mutex
	f     *os.File
	dirty bool
	err   error
	n     int
	stop  chan struct{}
	done  chan struct{}
}

// syncEvery bounds how long a written record may wait for fsync.
var syncEvery = time.Second

// openJournal creates the journal with its header, or, with resume,
// opens the existing one for appending after its last complete line
// (size is what readJournal found valid).
func openJournal(path string, h *journalHeader, resumeAt int64) (*journalWriter, error) {
	var f *os.File
	var err error
	if h != nil {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errJournal, err)
		}
		line, _ := json.Marshal(h)
		if _, err := f.Write(append(line, '\n')); err != nil {
			f.Close()
			return nil, fmt.Errorf("%w: %w", errJournal, err)
		}
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errJournal, err)
		}
		// Cut a torn last line so the next record starts on its own line.
		if err := f.Truncate(resumeAt); err != nil {
			f.Close()
			return nil, fmt.Errorf("%w: %w", errJournal, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", errJournal, err)
	}
	w := &journalWriter{f: f, stop: make(chan struct{}), done: make(chan struct{})}
	go w.syncLoop()
	return w, nil
}

func (w *journalWriter) syncLoop() {
	defer close(w.done)
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.sync()
		}
	}
}

func (w *journalWriter) sync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirty && w.err == nil {
		w.err = w.f.Sync()
		w.dirty = false
	}
}

// add writes one record with a single write(2).
func (w *journalWriter) add(i int, tr audit.TargetResult) {
	line, err := json.Marshal(journalRecord{I: i, Time: time.Now().UTC(), Target: tr})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if err != nil {
		w.err = err
		return
	}
	if _, err := w.f.Write(append(line, '\n')); err != nil {
		w.err = err
		return
	}
	w.dirty = true
	w.n++
}

// close syncs and closes; it returns the first write error.
func (w *journalWriter) close() error {
	close(w.stop)
	<-w.done
	w.sync()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Close(); w.err == nil && err != nil {
		w.err = err
	}
	if w.err != nil {
		return fmt.Errorf("%w: %w", errJournal, w.err)
	}
	return nil
}

// journalState is what an existing journal holds.
type journalState struct {
	Header journalHeader
	Done   map[int]bool // indices of finished targets
	Valid  int64        // bytes up to the end of the last complete line
}

// lineAt is where a journal line is: its offset and length in bytes.
type lineAt struct {
	off int64
	n   int
}

// scanJournal reads the journal at path, calling fn (if set) for every
// record and the line it was read from, from one goroutine at a time but
// not in file order: records are
// decoded on every CPU, since a merge of 1000 targets decodes about 100 MB.
// Without fn only the target indices are decoded. A last line without its
// newline, or one that does not parse, is a torn write and is ignored; a
// bad line before the last is an error.
func scanJournal(path string, fn func(journalRecord, lineAt) error) (*journalState, error) {
	f, err := atomicfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	st := &journalState{Done: map[int]bool{}}
	type line struct {
		n    int
		at   lineAt
		data []byte
		last bool
	}
	type decoded struct {
		n   int
		at  lineAt
		rec journalRecord
		err error
	}
	lines := make(chan line, 64)
	out := make(chan decoded, 64)
	var wg sync.WaitGroup
	for w := 0; w < max(1, runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range lines {
				var d decoded
				d.n, d.at = l.n, l.at
				if fn != nil {
					d.err = json.Unmarshal(l.data, &d.rec)
				} else {
					var idx struct {
						I *int `json:"i"`
					}
					if d.err = json.Unmarshal(l.data, &idx); d.err == nil && idx.I == nil {
						d.err = errors.New("no target index")
					} else if d.err == nil {
						d.rec.I = *idx.I
					}
				}
				if d.err != nil && l.last {
					d.err = errTorn
				}
				out <- d
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		var off int64
		for n := 1; ; n++ {
			data, err := r.ReadBytes('\n')
			at := lineAt{off, len(data)}
			off += int64(len(data))
			if errors.Is(err, io.EOF) {
				if len(data) > 0 && n == 1 {
					readErr <- fmt.Errorf("%w %s: line 1 is not a %s header", errJournal, path, journalSchema)
				}
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- fmt.Errorf("%w %s: %w", errJournal, path, err)
				return
			}
			if n == 1 {
				if err := json.Unmarshal(data, &st.Header); err != nil || st.Header.Journal != journalSchema {
					readErr <- fmt.Errorf("%w %s: line 1 is not a %s header", errJournal, path, journalSchema)
					return
				}
				continue
			}
			_, perr := r.Peek(1)
			lines <- line{n: n, at: at, data: data, last: errors.Is(perr, io.EOF)}
		}
	}()
	// Valid is the end of the last good line: the header plus every
	// record but a torn last one.
	var firstErr error
	var firstErrLine int
	torn := 0
	for d := range out {
		switch {
		case errors.Is(d.err, errTorn):
			torn = d.n
		case d.err != nil:
			if firstErr == nil || d.n < firstErrLine {
				firstErr, firstErrLine = fmt.Errorf("%w %s: line %d: %w", errJournal, path, d.n, d.err), d.n
			}
		case d.rec.I < 0 || d.rec.I >= st.Header.Targets:
			if firstErr == nil || d.n < firstErrLine {
				firstErr, firstErrLine = fmt.Errorf("%w %s: line %d: target index %d out of range", errJournal, path, d.n, d.rec.I), d.n
			}
		default:
			st.Done[d.rec.I] = true
			if fn != nil && firstErr == nil {
				if err := fn(d.rec, d.at); err != nil {
					firstErr, firstErrLine = err, 0
				}
			}
		}
	}
	if err := <-readErr; err != nil {
		return nil, err
	}
	if st.Header.Journal != journalSchema {
		return nil, fmt.Errorf("%w %s: empty journal", errJournal, path)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errJournal, path, err)
	}
	switch st.Valid = fi.Size(); {
	case torn > 0: // a complete last line that does not parse: cut it
		st.Valid = lastNewline(f, fi.Size()-1)
	case !endsWithNewline(f, fi.Size()): // a last line cut short
		st.Valid = lastNewline(f, fi.Size())
	}
	return st, nil
}

var errTorn = errors.New("torn last line")

func endsWithNewline(f *os.File, size int64) bool {
	b := make([]byte, 1)
	_, err := f.ReadAt(b, size-1)
	return err == nil && b[0] == '\n'
}

// lastNewline is the offset just after the last newline before size.
func lastNewline(f *os.File, size int64) int64 {
	const chunk = 64 << 10
	for end := size; end > 0; {
		start := max(0, end-chunk)
		b := make([]byte, end-start)
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1
		}
		end = start
	}
	return 0
}

// mergedRun is a finished run assembled from the journal without holding
// every target: Result has the run with each target in the form the
// command prints (whole, or its summary), and Targets streams the whole
// targets from the journal to the evidence encoder, one at a time.
type mergedRun struct {
	Result *audit.Result
	// Full: Result.Targets are whole (the JSON and CSV outputs need them),
	// and Targets is nil.
	Full bool
	// Targets yields every target in the targets file's order, read back
	// from the journal (or, for one the journal lacks, from this
	// invocation's result).
	Targets evidence.TargetSource
}

// Evidence is the audit run to add to the evidence: the whole targets
// if Result holds them, else Result without its targets and a source
// that reads them back one at a time.
func (m *mergedRun) Evidence(purpose evidence.Purpose) evidence.AuditRun {
	if m.Full {
		return evidence.AuditRun{Purpose: purpose, Result: m.Result}
	}
	res := *m.Result
	res.Targets = nil
	return evidence.AuditRun{Purpose: purpose, Result: &res, Targets: m.Targets}
}

// mergeJournal assembles the whole run: every journaled target in the
// targets file's order, and from res (this invocation's result, indexed
// by idx, the targets file positions of res.Targets) every target the
// journal lacks (cut short by --deadline). The vantage lists every source
// address seen in the transcripts. Each target gets its entry's client
// and WinRM host.
//
// Memory: the journal is read twice, once here (every record decoded, in
// parallel, and dropped after its summary, verdict and source addresses
// are taken) and once by Targets, one record at a time through the
// offsets noted here. Only with full are whole targets kept.
func mergeJournal(path string, entries []targetEntry, res *audit.Result, idx []int, full bool) (*mergedRun, error) {
	out := &audit.Result{Targets: make([]audit.TargetResult, len(entries))}
	at := make([]lineAt, len(entries)) // n == 0: not in the journal
	seen := map[string]bool{}
	st, err := scanJournal(path, func(rec journalRecord, l lineAt) error {
		addSourceAddrs(seen, &rec.Target)
		if !full {
			summarizeTarget(&rec.Target)
		}
		out.Targets[rec.I] = rec.Target
		at[rec.I] = l
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Start = st.Header.Started
	out.End = time.Now()
	out.Options = st.Header.Options
	var fromRes map[int]*audit.TargetResult
	if res != nil {
		out.Options, out.Vantage, out.End = res.Options, res.Vantage, res.End
		fromRes = map[int]*audit.TargetResult{}
		for j, i := range idx {
			if at[i].n == 0 && j < len(res.Targets) {
				fromRes[i] = &res.Targets[j]
				addSourceAddrs(seen, &res.Targets[j])
				out.Targets[i] = res.Targets[j]
			}
		}
	}
	for i := range out.Targets {
		if at[i].n == 0 && fromRes[i] == nil {
			return nil, fmt.Errorf("%w: target %s (line %d) has no result", errJournal, entries[i].Target, entries[i].Line)
		}
		out.Targets[i].Client, out.Targets[i].WinRMHost = entries[i].Client, entries[i].WinRMHost
	}
	for _, a := range out.Vantage.SourceAddrs {
		seen[a] = true
	}
	out.Vantage.SourceAddrs = slices.Sorted(maps.Keys(seen))
	if out.Vantage.UTC.IsZero() {
		out.Vantage.UTC = out.Start.UTC()
	}
	out.Aggregate()
	m := &mergedRun{Result: out, Full: full}
	if !full {
		m.Targets = func(yield func(*audit.TargetResult) error) error {
			return readJournalTargets(path, entries, at, fromRes, yield)
		}
	}
	return m, nil
}

// readJournalTargets yields target i, for every i in order, from its
// journal line at[i] or, where the journal lacks it, from fromRes[i].
// Records are decoded on every CPU a few targets ahead of the one
// yielded (at most two per CPU wait), so the memory stays that of a few
// targets while the decoding keeps up with the encoder.
func readJournalTargets(path string, entries []targetEntry, at []lineAt, fromRes map[int]*audit.TargetResult, yield func(*audit.TargetResult) error) error {
	f, err := atomicfile.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", errJournal, err)
	}
	defer f.Close()
	type decoded struct {
		t   *audit.TargetResult
		err error
	}
	type job struct {
		i   int
		out chan decoded
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan job)
	order := make(chan chan decoded, 2*workers)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()   // then close the file
	defer close(done) // first stop the producer
	go func() {
		defer close(order)
		defer close(jobs)
		for i := range at {
			out := make(chan decoded, 1)
			select {
			case order <- out:
			case <-done:
				return
			}
			select {
			case jobs <- job{i, out}:
			case <-done:
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t, err := readJournalTarget(f, path, at, fromRes, j.i)
				if t != nil {
					t.Client, t.WinRMHost = entries[j.i].Client, entries[j.i].WinRMHost
				}
				j.out <- decoded{t, err}
			}
		}()
	}
	for out := range order {
		d := <-out
		if d.err != nil {
			return d.err
		}
		if err := yield(d.t); err != nil {
			return err
		}
	}
	return nil
}

// readJournalTarget reads target i back from the journal f (or takes a
// copy of fromRes[i] if the journal lacks it).
func readJournalTarget(f *os.File, path string, at []lineAt, fromRes map[int]*audit.TargetResult, i int) (*audit.TargetResult, error) {
	l := at[i]
	if l.n == 0 {
		t := *fromRes[i]
		return &t, nil
	}
	buf := make([]byte, l.n)
	if _, err := f.ReadAt(buf, l.off); err != nil {
		return nil, fmt.Errorf("%w %s: re-read at byte %d: %w", errJournal, path, l.off, err)
	}
	var rec journalRecord
	if err := json.Unmarshal(buf, &rec); err != nil || rec.I != i {
		return nil, fmt.Errorf("%w %s: the record at byte %d changed while merging (target %d, %v)", errJournal, path, l.off, i, err)
	}
	return &rec.Target, nil
}

// summarizeTarget keeps what the text summary prints of a target (the
// form Options.SummaryOnly keeps while probing): verdicts, reasons,
// triggers, the triggering tests and the counters; no transcripts, DNS
// answers, other tests or certificates.
func summarizeTarget(t *audit.TargetResult) {
	t.DNS = nil
	for j := range t.Endpoints {
		ep := &t.Endpoints[j]
		kept := []audit.TestResult{}
		for _, ts := range ep.Tests {
			if slices.Contains(ep.Triggers, ts.ID) {
				ts.Catch = nil
				kept = append(kept, ts)
			}
		}
		ep.Tests, ep.Transcripts = kept, []audit.Transcript{}
		if ep.TLSInfo != nil {
			ep.TLSInfo.Certificates = nil
		}
	}
}

// addSourceAddrs adds the local address of every transcript of t to seen.
func addSourceAddrs(seen map[string]bool, t *audit.TargetResult) {
	for _, ep := range t.Endpoints {
		for _, tr := range ep.Transcripts {
			if ap, err := netip.ParseAddrPort(tr.Local); err == nil {
				seen[ap.Addr().Unmap().String()] = true
			}
		}
	}
}

// sameRunOptions compares what decides the tests' meaning.
func sameRunOptions(a, b audit.OptionsSummary) error {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		return fmt.Errorf("the journal was written with other audit options (%s); resume with the same flags", strings.TrimSpace(string(ja)))
	}
	return nil
}

func journalExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
