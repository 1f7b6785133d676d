package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// A small run of the bench (N=20, relaylock only): the built binary finds
// every open host and no closed one, with at most 6 round trips on a
// connection to a server that offers PIPELINING.
func TestBenchSmoke(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bench listens on 127.1.x.y, which is loopback only on Linux")
	}
	if l, err := net.Listen("tcp", "127.1.0.1:0"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the bench needs 127.1.0.1 on loopback: %v", err)
		}
		t.Skipf("127.1.0.1 is not on loopback here: %v", err)
	} else {
		l.Close()
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "relaylock")
	build := exec.Command("go", "build", "-o", bin, "github.com/relaylock/relaylock/cmd/relaylock")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build relaylock: %v\n%s", err, out)
	}
	var out bytes.Buffer
	rep, err := bench(config{N: 20, Delay: time.Millisecond, OpenEvery: 4, Relaylock: bin, Nmap: "none",
		PerHost: 4, Repeat: 1, Evidence: true, Addresses: 300, Work: dir, Out: &out, Port0: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	if len(rep.Tools) != 2 || rep.Addresses == nil {
		t.Fatalf("%d relaylock variants and address run %v; want 2 and one", len(rep.Tools), rep.Addresses)
	}
	for _, rl := range rep.Tools {
		if fp, miss := score(rl.Found, hostsOf(rep)); fp != 0 || miss != 0 || len(rl.Found) != rep.Open || rep.Open != 5 {
			t.Fatalf("%s: found %v of %d open: %d false positives, %d missed", rl.Name, rl.Found, rep.Open, fp, miss)
		}
		if len(rl.Missed) != 0 {
			t.Fatalf("%s: undecided hosts: %v", rl.Name, rl.Missed)
		}
		// Over a 1 ms link every host fits one connection and one batch:
		// greeting, EHLO, the batch, QUIT as the servers count them.
		if rl.RTPer > 6 || rl.RTPer < 4 || rl.ConnsPer != 1 || rl.MaxAtOnce != 1 {
			t.Errorf("%s: %.1f round trips over %.1f connections per host (%d at once); want 4..6 over one", rl.Name, rl.RTPer, rl.ConnsPer, rl.MaxAtOnce)
		}
		if rl.TestsPer < 40 {
			t.Errorf("%s: %.1f tests per host; want at least 2.5 times nmap's 16", rl.Name, rl.TestsPer)
		}
	}
	if a := rep.Addresses; len(a.Missed) != 0 || a.MaxRSS == 0 {
		t.Errorf("address run: %d targets decided where nothing listens (%v), RSS %d", len(a.Missed), a.Missed, a.MaxRSS)
	}
	if _, err := os.Stat(filepath.Join(dir, "evidence.json.journal")); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
}

// hostsOf rebuilds the truth of a report: every OpenEvery'th host (4 in
// TestBenchSmoke) is open.
func hostsOf(rep *report) []*host {
	hs := make([]*host, rep.Hosts)
	for i := range hs {
		hs[i] = &host{Open: i%4 == 0}
	}
	return hs
}
