package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ResultWriter writes a Result as JSON while Run produces it, so that
// memory holds the targets in flight, not every finished transcript.
//
// Format "json" is one document with Result's fields, indented as
// json.Encoder with SetIndent("", "  ") does: the header (start, options),
// then the targets in the order given (each written as soon as it and
// every target before it are finished), then the closing fields (end,
// vantage, verdict). Format "jsonl" is one TargetResult per line, in the
// same order, and nothing else.
//
// A target finished out of order waits, marshalled, until the targets
// before it are written; past spillAt bytes such targets go to a
// temporary file instead of memory, so one slow target early in a long
// list costs disk, not memory.
type ResultWriter struct {
	mu      sync.Mutex
	w       *bufio.Writer
	lines   bool
	total   int
	next    int // index of the next target to write
	started bool
	done    []bool // targets written or waiting
	held    map[int]heldTarget
	heldMem int
	spill   *os.File
	spillAt int
	spillN  int64
	err     error
}

type heldTarget struct {
	data []byte // in memory, or
	off  int64  // at off in the spill file,
	n    int    // n bytes long
}

// DefaultSpillAt is how many bytes of out-of-order targets a
// ResultWriter keeps in memory before it spills them to a file.
const DefaultSpillAt = 16 << 20

// NewResultWriter returns a writer of format "json" or "jsonl" for a run
// of total targets.
func NewResultWriter(w io.Writer, format string, total int) (*ResultWriter, error) {
	if format != "json" && format != "jsonl" {
		return nil, fmt.Errorf("unknown JSON format %q (json or jsonl)", format)
	}
	return &ResultWriter{w: bufio.NewWriterSize(w, 64<<10), lines: format == "jsonl", total: total,
		done: make([]bool, total), held: map[int]heldTarget{}, spillAt: DefaultSpillAt}, nil
}

// Start writes the header (Options.OnStart).
func (s *ResultWriter) Start(header Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked(header)
}

func (s *ResultWriter) startLocked(header Result) {
	if s.started {
		return
	}
	s.started = true
	if s.lines {
		return
	}
	s.write([]byte("{\n"))
	s.field("start", header.Start, true)
	s.field("options", header.Options, true)
	s.write([]byte(`  "targets": [`))
}

// field writes `  "name": value` indented one level.
func (s *ResultWriter) field(name string, v any, comma bool) {
	data, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		s.setErr(err)
		return
	}
	s.write([]byte(`  "` + name + `": `))
	s.write(data)
	if comma {
		s.write([]byte(","))
	}
	s.write([]byte("\n"))
}

func (s *ResultWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	if _, err := s.w.Write(b); err != nil {
		s.setErr(err)
	}
}

func (s *ResultWriter) setErr(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Target adds target i (Options.OnTarget). A target given twice keeps
// the first.
func (s *ResultWriter) Target(i int, tr TargetResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= s.total || s.done[i] || s.err != nil {
		return
	}
	s.done[i] = true
	data, err := s.marshal(tr)
	if err != nil {
		s.setErr(err)
		return
	}
	if i != s.next {
		s.hold(i, data)
		return
	}
	s.emit(data)
	s.drain()
}

func (s *ResultWriter) marshal(tr TargetResult) ([]byte, error) {
	data, err := json.Marshal(tr)
	if err != nil || s.lines {
		return data, err
	}
	return appendIndented(make([]byte, 0, len(data)+len(data)/2), data, "    "), nil
}

// emit writes the next target.
func (s *ResultWriter) emit(data []byte) {
	switch {
	case s.lines:
		s.write(data)
		s.write([]byte("\n"))
	default:
		if s.next > 0 {
			s.write([]byte(","))
		}
		s.write([]byte("\n    "))
		s.write(data)
	}
	s.next++
	// Let a reader of a pipe see each finished stretch of targets.
	if s.err == nil && s.w.Buffered() > 32<<10 {
		s.setErr(s.w.Flush())
	}
}

// drain writes the held targets that are next in order.
func (s *ResultWriter) drain() {
	for {
		h, ok := s.held[s.next]
		if !ok {
			return
		}
		delete(s.held, s.next)
		data := h.data
		if data == nil {
			data = make([]byte, h.n)
			if _, err := s.spill.ReadAt(data, h.off); err != nil {
				s.setErr(fmt.Errorf("read back a finished target: %w", err))
				return
			}
		} else {
			s.heldMem -= len(data)
		}
		s.emit(data)
	}
}

func (s *ResultWriter) hold(i int, data []byte) {
	if s.heldMem+len(data) <= s.spillAt {
		s.held[i] = heldTarget{data: data, n: len(data)}
		s.heldMem += len(data)
		return
	}
	if s.spill == nil {
		f, err := os.CreateTemp("", "relaylock-targets-*.json")
		if err != nil {
			s.setErr(fmt.Errorf("keep a finished target on disk: %w", err))
			return
		}
		s.spill = f
	}
	if _, err := s.spill.WriteAt(data, s.spillN); err != nil {
		s.setErr(fmt.Errorf("keep a finished target on disk: %w", err))
		return
	}
	s.held[i] = heldTarget{off: s.spillN, n: len(data)}
	s.spillN += int64(len(data))
}

// Finish writes the targets not yet given from res.Targets (those cut
// short by cancellation or a deadline, which OnTarget does not report)
// and the closing fields, flushes, and removes the spill file. It
// returns the first write error.
func (s *ResultWriter) Finish(res *Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.closeSpill()
	s.startLocked(Result{Start: res.Start, Options: res.Options})
	for i := range min(s.total, len(res.Targets)) {
		if s.err != nil {
			break
		}
		if s.done[i] {
			continue
		}
		s.done[i] = true
		data, err := s.marshal(res.Targets[i])
		if err != nil {
			s.setErr(err)
			break
		}
		if i == s.next {
			s.emit(data)
			s.drain()
		} else {
			s.hold(i, data)
		}
	}
	if s.err == nil && s.next != s.total {
		s.setErr(fmt.Errorf("%d of %d targets have no result", s.total-s.next, s.total))
	}
	if !s.lines {
		if s.next > 0 {
			s.write([]byte("\n  "))
		}
		s.write([]byte("],\n"))
		s.field("end", res.End, true)
		s.field("vantage", res.Vantage, true)
		s.field("verdict", res.Verdict, false)
		s.write([]byte("}\n"))
	}
	if s.err == nil {
		s.setErr(s.w.Flush())
	}
	return s.err
}

// WriteAll writes a finished Result.
func (s *ResultWriter) WriteAll(res *Result) error {
	s.Start(*res)
	for i, tr := range res.Targets {
		s.Target(i, tr)
	}
	return s.Finish(res)
}

func (s *ResultWriter) closeSpill() {
	if s.spill == nil {
		return
	}
	name := s.spill.Name()
	s.spill.Close()
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.setErr(err)
	}
	s.spill = nil
	s.held = map[int]heldTarget{}
}
