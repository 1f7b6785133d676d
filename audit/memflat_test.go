package audit

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/heapwatch"
)

// Memory follows the work in flight, not the number of targets: audited
// as `relaylock audit --targets FILE --format json` does (every target
// streamed through a ResultWriter, the Result keeping verdicts only), 20
// times the targets must not cost more than a few hundred bytes per
// extra target (each keeps its verdict; before the bounded pipeline and
// the streamed output it was about 10 KB). The targets are addresses
// where nothing listens (connection refused), the bench's 50,000-target
// case scaled down (bench/run.sh runs it full size).
func TestRunMemoryFlatInTargets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs all of 127/8 on loopback, as on Linux")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	defer debug.SetGCPercent(debug.SetGCPercent(25)) // HeapAlloc near the live heap
	growth := func(n int) uint64 {
		targets := make([]string, n)
		for i := range targets {
			targets[i] = fmt.Sprintf("127.4.%d.%d:%d", i/250, i%250+1, port)
		}
		w, _ := NewResultWriter(io.Discard, "json", n)
		hw := heapwatch.Start(5 * time.Millisecond)
		res, err := Run(context.Background(), Options{Targets: targets, MailDomain: "example.com", HeloName: "probe.example.net",
			SummaryOnly: true, VerdictOnly: true, OnStart: w.Start, OnTarget: w.Target, ConnectTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(res); err != nil {
			t.Fatal(err)
		}
		_, g := hw.Stop()
		for _, tr := range res.Targets {
			if tr.Verdict != VerdictInconclusive || tr.Endpoints != nil {
				t.Fatalf("%s: %s %s (%d endpoints kept)", tr.Target, tr.Verdict, tr.Reason, len(tr.Endpoints))
			}
		}
		runtime.KeepAlive(res)
		return g
	}
	const small, large = 1000, 20000
	gs := growth(small)
	gl := growth(large)
	per := float64(int64(gl)-int64(gs)) / (large - small)
	t.Logf("heap growth: %d targets %.1f MB, %d targets %.1f MB: %.0f B per extra target", small, float64(gs)/(1<<20), large, float64(gl)/(1<<20), per)
	if per > 1024 {
		t.Fatalf("%.0f B of heap per extra target; memory must follow the work in flight", per)
	}
}
