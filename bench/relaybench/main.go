// Command relaybench measures relaylock against nmap's smtp-open-relay
// script on loopback only.
//
// It starts N smtptest SMTP servers, each on its own 127.1.x.y address and
// one shared port (nmap scans one host list with one port list), a mix of
// open relays and closed servers with a known truth (every -open-every'th
// host is open), each delaying every reply by -delay and, optionally,
// tarpitting every 5xx of the closed ones by -tarpit; and an in-process
// DNS server where domain dN.bench.test has the MX mxN.bench.test at that
// host's address. Then it runs the built relaylock binary
// (`relaylock audit --targets FILE --evidence FILE`) and, when nmap is in
// PATH, `nmap -n -Pn -sT -p PORT --script smtp-open-relay` on the same
// hosts, and prints for both: wall time, peak RSS, hosts per second,
// tests per host (MAIL FROM commands the servers received), hosts found
// open against the truly open ones, and relaylock's round trips.
//
// Nothing leaves the machine: every address is in 127.0.0.0/8.
//
//	go build -o /tmp/relaylock ./cmd/relaylock
//	go run ./bench/relaybench -relaylock /tmp/relaylock -n 1000 -delay 50ms
//
// bench/run.sh does both.
package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/dnstest"
	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/report/evidence"
)

type config struct {
	N           int
	Delay       time.Duration // link latency: every reply arrives this late
	ServerDelay time.Duration // server time before every reply, one after another
	Tarpit      time.Duration
	OpenEvery   int
	Relaylock   string
	Nmap        string // path, "" = look in PATH, "none" = skip
	Concurrency int
	PerHost     int
	Rate        float64
	Work        string
	Out         io.Writer
	Port0       bool // never try port 25
}

func main() {
	var c config
	flag.IntVar(&c.N, "n", 1000, "number of hosts (and domains)")
	flag.DurationVar(&c.Delay, "delay", 50*time.Millisecond, "link latency: every SMTP reply arrives this long after its command (replies flushed together arrive together)")
	flag.DurationVar(&c.ServerDelay, "server-delay", 0, "server time before every SMTP reply, one reply after the other (a slow server, not a slow link)")
	flag.DurationVar(&c.Tarpit, "tarpit", 0, "extra delay before every 5xx reply of the closed hosts")
	flag.IntVar(&c.OpenEvery, "open-every", 10, "every Nth host is an open relay (the rest are closed)")
	flag.StringVar(&c.Relaylock, "relaylock", "relaylock", "the relaylock binary")
	flag.StringVar(&c.Nmap, "nmap", "", `the nmap binary ("" looks in PATH, "none" skips nmap)`)
	flag.IntVar(&c.Concurrency, "concurrency", 400, "relaylock --concurrency")
	flag.IntVar(&c.PerHost, "per-host", 0, "relaylock --per-host (0: relaylock's default)")
	flag.Float64Var(&c.Rate, "rate", 0, "relaylock --rate (0: unlimited)")
	flag.StringVar(&c.Work, "dir", "", "work directory (default: a new temporary one, removed afterwards)")
	flag.Parse()
	c.Out = os.Stdout
	if c.Work == "" {
		d, err := os.MkdirTemp("", "relaybench")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		c.Work = d
	}
	if _, err := bench(c); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "relaybench:", err)
	os.Exit(1)
}

// host is one SMTP server of the bench.
type host struct {
	Addr   netip.Addr
	Domain string
	Open   bool
	srv    *smtptest.Server
}

// toolResult is what one tool did.
type toolResult struct {
	Name   string
	Wall   time.Duration
	MaxRSS int64         // bytes
	CPU    time.Duration // user + system
	// ProbeRSS is relaylock's peak RSS until every target was done and
	// journaled, before the journal is merged into the evidence (sampled
	// from /proc every 20 ms; 0 where /proc is missing), ProbeWall that
	// moment.
	ProbeRSS  int64
	ProbeWall time.Duration
	Found     []int // indices of hosts reported open
	MailPer   float64
	TestsPer  float64 // relaylock: tests run (not skipped) per host
	RTPer     float64 // relaylock: round trips per host
	RTPerConn float64 // relaylock: round trips per connection
	MaxConnRT int     // relaylock: most round trips on one connection
	ConnsPer  float64
	SettleMax time.Duration // relaylock: slowest closed endpoint
	Missed    []string
}

// report is the whole bench outcome.
type report struct {
	Hosts, Open int
	Tools       []*toolResult
}

func bench(c config) (*report, error) {
	if c.N < 1 || c.OpenEvery < 1 {
		return nil, errors.New("-n and -open-every must be at least 1")
	}
	hosts, port, err := startHosts(c)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, h := range hosts {
			h.srv.Close()
		}
	}()
	var recs []string
	for i, h := range hosts {
		mx := fmt.Sprintf("mx%d.bench.test", i)
		recs = append(recs, fmt.Sprintf("%s. 300 IN MX 10 %s.", h.Domain, mx), fmt.Sprintf("%s. 300 IN A %s", mx, h.Addr))
	}
	dsrv, err := dnstest.NewServer(dnstest.Zone{Records: recs})
	if err != nil {
		return nil, err
	}
	if err := dsrv.ListenAndServe("127.0.0.1:0"); err != nil {
		return nil, err
	}
	defer dsrv.Close()

	rep := &report{Hosts: len(hosts)}
	for _, h := range hosts {
		if h.Open {
			rep.Open++
		}
	}
	fmt.Fprintf(c.Out, "relaybench: %d hosts on 127.1.0.0/16 port %d (%d open), every reply %s late (link latency)", len(hosts), port, rep.Open, c.Delay)
	if c.ServerDelay > 0 {
		fmt.Fprintf(c.Out, ", %s of server time before every reply", c.ServerDelay)
	}
	if c.Tarpit > 0 {
		fmt.Fprintf(c.Out, ", %s tarpit on every 5xx of the closed hosts", c.Tarpit)
	}
	fmt.Fprintln(c.Out)

	base := mailCounts(hosts)
	rl, err := runRelaylock(c, hosts, port, dsrv.Addr())
	if err != nil {
		return nil, err
	}
	rl.MailPer = perHost(base, mailCounts(hosts))
	rep.Tools = append(rep.Tools, rl)

	nmapPath := c.Nmap
	if nmapPath == "" {
		nmapPath, _ = exec.LookPath("nmap")
	}
	if nmapPath == "" || nmapPath == "none" {
		if nmapPath == "" {
			fmt.Fprintln(c.Out, "relaybench: nmap is not installed (Debian: apt-get install nmap); relaylock only")
		}
	} else {
		base = mailCounts(hosts)
		nm, err := runNmap(c, nmapPath, hosts, port)
		if err != nil {
			return nil, err
		}
		nm.MailPer = perHost(base, mailCounts(hosts))
		rep.Tools = append(rep.Tools, nm)
	}
	printReport(c.Out, rep, hosts)
	js, _ := json.MarshalIndent(rep, "", "  ")
	os.WriteFile(filepath.Join(c.Work, "report.json"), js, 0o600)
	return rep, nil
}

// startHosts starts the servers: host i listens on 127.1.(i/250).(i%250+1)
// and every host on the same port, found by trying.
func startHosts(c config) ([]*host, int, error) {
	var lastErr error
	for try := 0; try < 20; try++ {
		// Port 25 first, where nmap's smtp-open-relay runs as shipped
		// (its portrule: 25, 465, 587 or a service named smtp); else
		// any port, and runNmap forces the script with "+".
		first := "127.1.0.1:25"
		if try > 0 || c.Port0 {
			first = "127.1.0.1:0"
		}
		l, err := net.Listen("tcp", first)
		if err != nil && try == 0 && !c.Port0 {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("listen on 127.1.0.1 (this bench needs all of 127/8 on loopback, as on Linux): %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		hosts := make([]*host, 0, c.N)
		ok := true
		for i := 0; i < c.N; i++ {
			a := netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(i%250 + 1)})
			h := &host{Addr: a, Domain: fmt.Sprintf("d%d.bench.test", i), Open: i%c.OpenEvery == 0}
			p := smtptest.Closed554()
			if h.Open {
				p = smtptest.Open()
			} else {
				p.Tarpit = c.Tarpit
			}
			p.Latency, p.Delay = c.Delay, c.ServerDelay
			p.Hostname = fmt.Sprintf("mx%d.bench.test", i)
			p.LocalDomains = []string{h.Domain}
			h.srv = smtptest.NewServer(p)
			if i == 0 {
				go h.srv.Serve(l)
			} else if err := h.srv.ListenAndServe(netip.AddrPortFrom(a, uint16(port)).String()); err != nil {
				lastErr, ok = err, false
				h.srv.Close()
				break
			}
			hosts = append(hosts, h)
		}
		if ok {
			return hosts, port, nil
		}
		for _, h := range hosts {
			h.srv.Close()
		}
	}
	return nil, 0, fmt.Errorf("no port free on every bench address: %w", lastErr)
}

// mailCounts is the number of MAIL commands each host has received.
func mailCounts(hosts []*host) []int {
	out := make([]int, len(hosts))
	for i, h := range hosts {
		for _, s := range h.srv.Sessions() {
			for _, l := range s.Lines {
				if len(l) > 8 && strings.EqualFold(l[:8], "C: MAIL ") {
					out[i]++
				}
			}
		}
	}
	return out
}

func perHost(before, after []int) float64 {
	sum := 0
	for i := range after {
		sum += after[i] - before[i]
	}
	return float64(sum) / float64(len(after))
}

func runRelaylock(c config, hosts []*host, port int, dnsAddr string) (*toolResult, error) {
	tf := filepath.Join(c.Work, "targets.txt")
	var b strings.Builder
	b.WriteString("# relaybench domains\n")
	for _, h := range hosts {
		b.WriteString(h.Domain + "\n")
	}
	if err := os.WriteFile(tf, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	ev := filepath.Join(c.Work, "evidence.json")
	os.Remove(ev)
	args := []string{"audit", "--targets", tf, "--evidence", ev, "--dns-server", dnsAddr, "--ports", strconv.Itoa(port),
		"--helo", "probe.bench.test", "--probe-domain", "example.net", "--concurrency", strconv.Itoa(c.Concurrency),
		"--rate", strconv.FormatFloat(c.Rate, 'f', -1, 64), "--timeout", "30s", "--connect-timeout", "10s"}
	if c.PerHost > 0 {
		args = append(args, "--per-host", strconv.Itoa(c.PerHost))
	}
	out, err := os.Create(filepath.Join(c.Work, "relaylock.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(c.Relaylock, args...)
	cmd.Stdout, cmd.Stderr = out, out
	fmt.Fprintf(c.Out, "relaybench: %s %s\n", c.Relaylock, strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	samples := sampleRSS(cmd.Process.Pid)
	err = cmd.Wait()
	r := &toolResult{Name: "relaylock", Wall: time.Since(start)}
	rss := <-samples
	if log, rerr := os.ReadFile(out.Name()); rerr == nil {
		if m := doneRE.FindSubmatch(log); m != nil {
			r.ProbeWall, _ = time.ParseDuration(string(m[1]))
			for _, s := range rss {
				if s.t <= r.ProbeWall {
					r.ProbeRSS = max(r.ProbeRSS, s.rss)
				}
			}
		}
	}
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		tail, _ := os.ReadFile(out.Name())
		return nil, fmt.Errorf("relaylock: %w\n%s", err, lastLines(string(tail), 20))
	}
	r.MaxRSS = maxRSS(cmd.ProcessState)
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	bundle, err := evidence.Load(ev)
	if err != nil {
		return nil, err
	}
	if len(bundle.Audits) != 1 || len(bundle.Audits[0].Result.Targets) != len(hosts) {
		return nil, fmt.Errorf("evidence %s: want one audit of %d targets", ev, len(hosts))
	}
	var tests, rts, conns, eps int
	for i, t := range bundle.Audits[0].Result.Targets {
		if t.Verdict == audit.VerdictOpen {
			r.Found = append(r.Found, i)
		}
		if t.Verdict != audit.VerdictOpen && t.Verdict != audit.VerdictClosed {
			r.Missed = append(r.Missed, fmt.Sprintf("%s: %s %s", t.Target, t.Verdict, t.Reason))
		}
		for _, ep := range t.Endpoints {
			eps++
			rts += ep.RoundTrips
			conns += ep.Connections
			for _, ts := range ep.Tests {
				if ts.Outcome != audit.OutcomeSkipped {
					tests++
				}
			}
			for _, tr := range ep.Transcripts {
				r.MaxConnRT = max(r.MaxConnRT, roundTrips(tr))
			}
			if ep.Verdict == audit.VerdictClosed {
				r.SettleMax = max(r.SettleMax, ep.End.Sub(ep.Start))
			}
		}
	}
	r.TestsPer = float64(tests) / float64(len(hosts))
	r.RTPer = float64(rts) / float64(len(hosts))
	r.ConnsPer = float64(conns) / float64(len(hosts))
	if conns > 0 {
		r.RTPerConn = float64(rts) / float64(conns)
	}
	return r, nil
}

// doneRE finds relaylock's "all N targets done (DURATION)" line.
var doneRE = regexp.MustCompile(`all \d+ targets done \(([0-9.a-zµ]+)\)`)

type rssSample struct {
	t   time.Duration
	rss int64
}

// sampleRSS reads VmRSS of pid every 20 ms until the process is gone and
// then sends the samples.
func sampleRSS(pid int) <-chan []rssSample {
	ch := make(chan []rssSample, 1)
	start := time.Now()
	go func() {
		var out []rssSample
		for {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				break
			}
			for _, l := range strings.Split(string(data), "\n") {
				if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					out = append(out, rssSample{time.Since(start), kb * 1024})
				}
			}
			if strings.Contains(string(data), "State:\tZ") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		ch <- out
	}()
	return ch
}

// roundTrips counts the waits for the server on one connection in its
// transcript: the greeting, then every run of client lines followed by
// a server line.
func roundTrips(tr audit.Transcript) int {
	n, prev := 0, "*"
	for _, l := range tr.Lines {
		if l.Dir == "S" && prev != "S" {
			n++
		}
		if l.Dir != "*" {
			prev = l.Dir
		}
	}
	return n
}

// nmapRun is the part of nmap's XML output the bench reads.
type nmapRun struct {
	Hosts []struct {
		Addrs []struct {
			Addr string `xml:"addr,attr"`
		} `xml:"address"`
		Ports []struct {
			Scripts []struct {
				ID     string `xml:"id,attr"`
				Output string `xml:"output,attr"`
			} `xml:"script"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

func runNmap(c config, nmapPath string, hosts []*host, port int) (*toolResult, error) {
	hf := filepath.Join(c.Work, "hosts.txt")
	var b strings.Builder
	index := map[string]int{}
	for i, h := range hosts {
		b.WriteString(h.Addr.String() + "\n")
		index[h.Addr.String()] = i
	}
	if err := os.WriteFile(hf, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	xf := filepath.Join(c.Work, "nmap.xml")
	script := "smtp-open-relay"
	if port != 25 && port != 465 && port != 587 {
		script = "+" + script // run it although the port is not an SMTP port
	}
	args := []string{"-n", "-Pn", "-sT", "-p", strconv.Itoa(port), "--script", script,
		"--script-args", "smtp-open-relay.domain=example.net", "-oX", xf, "-iL", hf}
	out, err := os.Create(filepath.Join(c.Work, "nmap.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(nmapPath, args...)
	cmd.Stdout, cmd.Stderr = out, out
	fmt.Fprintf(c.Out, "relaybench: %s %s\n", nmapPath, strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(out.Name())
		return nil, fmt.Errorf("nmap: %w\n%s", err, lastLines(string(tail), 20))
	}
	r := &toolResult{Name: "nmap", Wall: time.Since(start), MaxRSS: maxRSS(cmd.ProcessState), TestsPer: 16,
		CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	data, err := os.ReadFile(xf)
	if err != nil {
		return nil, err
	}
	var run nmapRun
	if err := xml.Unmarshal(data, &run); err != nil {
		return nil, fmt.Errorf("nmap XML: %w", err)
	}
	seen := map[int]bool{}
	for _, h := range run.Hosts {
		if len(h.Addrs) == 0 {
			continue
		}
		i, ok := index[h.Addrs[0].Addr]
		if !ok {
			continue
		}
		seen[i] = true
		found := false
		for _, p := range h.Ports {
			for _, s := range p.Scripts {
				if s.ID == "smtp-open-relay" {
					found = true
					if strings.Contains(s.Output, "is an open relay") {
						r.Found = append(r.Found, i)
					}
				}
			}
		}
		if !found {
			r.Missed = append(r.Missed, fmt.Sprintf("%s: no smtp-open-relay output", hosts[i].Domain))
		}
	}
	for i, h := range hosts {
		if !seen[i] {
			r.Missed = append(r.Missed, fmt.Sprintf("%s: not in nmap's output", h.Addr))
		}
	}
	sort.Ints(r.Found)
	return r, nil
}

func printReport(w io.Writer, rep *report, hosts []*host) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\twall\tCPU\tmax RSS\tprobe phase (RSS)\thosts/s\ttests/host\tMAIL/host\tfound open\ttruly open\tfalse pos.\tmissed\tRT/host\tRT/conn (max)\tconns/host\tslowest closed\t")
	for _, t := range rep.Tools {
		fp, miss := score(t.Found, hosts)
		rt, rtc, cph, settle, probe := "-", "-", "-", "-", "-"
		if t.ProbeWall > 0 {
			probe = fmt.Sprintf("%s (%.0f MB)", t.ProbeWall.Round(time.Millisecond), float64(t.ProbeRSS)/(1<<20))
		}
		if t.Name == "relaylock" {
			rt = fmt.Sprintf("%.1f", t.RTPer)
			rtc = fmt.Sprintf("%.1f (%d)", t.RTPerConn, t.MaxConnRT)
			cph = fmt.Sprintf("%.1f", t.ConnsPer)
			settle = t.SettleMax.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f MB\t%s\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", t.Name, t.Wall.Round(time.Millisecond), t.CPU.Round(time.Millisecond),
			float64(t.MaxRSS)/(1<<20), probe, float64(rep.Hosts)/t.Wall.Seconds(), t.TestsPer, t.MailPer, len(t.Found), rep.Open, fp, miss, rt, rtc, cph, settle)
	}
	tw.Flush()
	if len(rep.Tools) == 2 {
		a, b := rep.Tools[0], rep.Tools[1]
		fmt.Fprintf(w, "relaybench: relaylock is %.1fx faster than nmap and runs %.1fx its tests per host\n",
			b.Wall.Seconds()/a.Wall.Seconds(), a.TestsPer/b.TestsPer)
	}
	for _, t := range rep.Tools {
		for i, m := range t.Missed {
			if i == 10 {
				fmt.Fprintf(w, "relaybench: %s: ... %d more\n", t.Name, len(t.Missed)-10)
				break
			}
			fmt.Fprintf(w, "relaybench: %s: not decided: %s\n", t.Name, m)
		}
	}
}

// score counts false positives and open hosts not found.
func score(found []int, hosts []*host) (falsePos, missed int) {
	f := map[int]bool{}
	for _, i := range found {
		f[i] = true
		if !hosts[i].Open {
			falsePos++
		}
	}
	for i, h := range hosts {
		if h.Open && !f[i] {
			missed++
		}
	}
	return
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
