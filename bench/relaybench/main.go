// Command relaybench measures relaylock against nmap's smtp-open-relay
// script on loopback only, both at their defaults.
//
// It starts N smtptest SMTP servers, each on its own 127.1.x.y address and
// one shared port (nmap scans one host list with one port list), a mix of
// open relays and closed servers with a known truth (every -open-every'th
// host is open), each delaying every reply by -delay and, optionally,
// tarpitting every 5xx of the closed ones by -tarpit; and an in-process
// DNS server where domain dN.bench.test has the MX mxN.bench.test at that
// host's address. Then it runs, -repeat times each, the built relaylock
// binary with every setting that shapes speed at its default:
//
//   - `relaylock audit --targets FILE --format json`, the JSON on stdout
//     (the document is read back for the verdicts);
//   - the same with `--evidence FILE` instead (journal, then the evidence
//     file), unless -evidence=false;
//
// then, when nmap is in PATH, `nmap -n -Pn -sT -p PORT --script
// smtp-open-relay` once on the same hosts; and last -addresses address
// targets on 127.2.0.0/16 where nothing listens (`--targets FILE --format
// json`), for memory at scale. It prints for each: wall time (median and
// range), peak RSS, hosts per second, tests per host (MAIL commands the
// servers received), hosts found open against the truly open ones, false
// positives, round trips and connections per host as the servers counted
// them, and the most connections one server had at once.
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
	"slices"
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
	Concurrency int    // 0: relaylock's default
	PerHost     int    // 0: relaylock's default
	Rate        float64
	Repeat      int  // relaylock runs per variant (the median is reported)
	Evidence    bool // also run with --evidence
	Addresses   int  // address targets where nothing listens (0: skip)
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
	flag.IntVar(&c.Concurrency, "concurrency", 0, "relaylock --concurrency (0: relaylock's default)")
	flag.IntVar(&c.PerHost, "per-host", 0, "relaylock --per-host (0: relaylock's default)")
	flag.Float64Var(&c.Rate, "rate", 0, "relaylock --rate (0: relaylock's default, unlimited)")
	flag.IntVar(&c.Repeat, "repeat", 3, "relaylock runs per variant; the median is reported")
	flag.BoolVar(&c.Evidence, "evidence", true, "also run relaylock with --evidence (journal and evidence file)")
	flag.IntVar(&c.Addresses, "addresses", 50000, "also run relaylock on this many address targets where nothing listens (0: skip)")
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

// toolResult is what one tool did (for relaylock: the median run of a
// variant).
type toolResult struct {
	Name   string
	Runs   int
	Wall   time.Duration
	WallLo time.Duration // fastest and slowest of the runs
	WallHi time.Duration
	MaxRSS int64 // bytes, median of the runs
	RSSLo  int64
	RSSHi  int64
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
	// Server-side counts, the same for every tool: round trips (reply
	// flushes, the greeting included), connections, and the most
	// connections one server had at once.
	RTPer     float64
	ConnsPer  float64
	MaxAtOnce int
	SettleMax time.Duration // relaylock: slowest closed endpoint
	Missed    []string
	Concur    string // relaylock: what it said about its in-flight bound
}

// report is the whole bench outcome.
type report struct {
	Hosts, Open int
	Tools       []*toolResult
	Addresses   *toolResult // the address-target run, if any
}

func bench(c config) (*report, error) {
	if c.N < 1 || c.OpenEvery < 1 {
		return nil, errors.New("-n and -open-every must be at least 1")
	}
	c.Repeat = max(c.Repeat, 1)
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

	variants := []bool{false}
	if c.Evidence {
		variants = append(variants, true)
	}
	for _, ev := range variants {
		var runs []*toolResult
		for range c.Repeat {
			before := snapshot(hosts)
			r, err := runRelaylock(c, hosts, port, dsrv.Addr(), ev)
			if err != nil {
				return nil, err
			}
			serverCounts(r, hosts, before)
			fmt.Fprintf(c.Out, "relaybench: %s: %s, %.0f MB\n", r.Name, r.Wall.Round(time.Millisecond), float64(r.MaxRSS)/(1<<20))
			runs = append(runs, r)
		}
		rep.Tools = append(rep.Tools, median(runs))
	}

	nmapPath := c.Nmap
	if nmapPath == "" {
		nmapPath, _ = exec.LookPath("nmap")
	}
	if nmapPath == "" || nmapPath == "none" {
		if nmapPath == "" {
			fmt.Fprintln(c.Out, "relaybench: nmap is not installed (Debian: apt-get install nmap); relaylock only")
		}
	} else {
		before := snapshot(hosts)
		nm, err := runNmap(c, nmapPath, hosts, port)
		if err != nil {
			return nil, err
		}
		serverCounts(nm, hosts, before)
		rep.Tools = append(rep.Tools, nm)
	}
	if c.Addresses > 0 {
		var runs []*toolResult
		for range c.Repeat {
			r, err := runAddresses(c)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(c.Out, "relaybench: %s: %s, %.0f MB\n", r.Name, r.Wall.Round(time.Millisecond), float64(r.MaxRSS)/(1<<20))
			runs = append(runs, r)
		}
		rep.Addresses = median(runs)
	}
	printReport(c.Out, rep, hosts)
	js, _ := json.MarshalIndent(rep, "", "  ")
	os.WriteFile(filepath.Join(c.Work, "report.json"), js, 0o600)
	return rep, nil
}

// median returns the run with the median wall time, with the range of
// the walls and the median (and range) of the peak RSS.
func median(runs []*toolResult) *toolResult {
	sort.Slice(runs, func(i, j int) bool { return runs[i].Wall < runs[j].Wall })
	m := *runs[len(runs)/2]
	m.Runs = len(runs)
	m.WallLo, m.WallHi = runs[0].Wall, runs[len(runs)-1].Wall
	rss := make([]int64, len(runs))
	for i, r := range runs {
		rss[i] = r.MaxRSS
	}
	slices.Sort(rss)
	m.MaxRSS, m.RSSLo, m.RSSHi = rss[len(rss)/2], rss[0], rss[len(rss)-1]
	return &m
}

// snapshot is how many sessions each host has recorded so far.
func snapshot(hosts []*host) []int {
	out := make([]int, len(hosts))
	for i, h := range hosts {
		out[i] = len(h.srv.Sessions())
	}
	return out
}

// serverCounts fills what the servers saw of one tool's run: MAIL
// commands, round trips and connections per host, and the most
// connections one host had at once.
func serverCounts(r *toolResult, hosts []*host, before []int) {
	var mail, rts, conns int
	r.MaxAtOnce = 0
	for i, h := range hosts {
		ss := h.srv.Sessions()[before[i]:]
		conns += len(ss)
		type edge struct {
			t time.Time
			d int
		}
		var edges []edge
		for _, s := range ss {
			rts += s.Flushes
			for _, l := range s.Lines {
				if len(l) > 8 && strings.EqualFold(l[:8], "C: MAIL ") {
					mail++
				}
			}
			edges = append(edges, edge{s.Start, 1}, edge{s.End, -1})
		}
		sort.Slice(edges, func(a, b int) bool {
			if edges[a].t.Equal(edges[b].t) {
				return edges[a].d < edges[b].d
			}
			return edges[a].t.Before(edges[b].t)
		})
		n := 0
		for _, e := range edges {
			n += e.d
			r.MaxAtOnce = max(r.MaxAtOnce, n)
		}
	}
	r.MailPer = float64(mail) / float64(len(hosts))
	r.RTPer = float64(rts) / float64(len(hosts))
	r.ConnsPer = float64(conns) / float64(len(hosts))
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

func runRelaylock(c config, hosts []*host, port int, dnsAddr string, withEvidence bool) (*toolResult, error) {
	tf := filepath.Join(c.Work, "targets.txt")
	var b strings.Builder
	b.WriteString("# relaybench domains\n")
	for _, h := range hosts {
		b.WriteString(h.Domain + "\n")
	}
	if err := os.WriteFile(tf, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	// The settings this bench's environment needs; everything that shapes
	// speed and politeness stays at relaylock's default.
	args := []string{"audit", "--targets", tf, "--dns-server", dnsAddr, "--ports", strconv.Itoa(port),
		"--helo", "probe.bench.test", "--probe-domain", "example.net"}
	name := "relaylock, JSON on stdout"
	ev := filepath.Join(c.Work, "evidence.json")
	os.Remove(ev)
	if withEvidence {
		name = "relaylock, --evidence"
		args = append(args, "--evidence", ev)
	} else {
		args = append(args, "--format", "json")
	}
	args = append(args, tuning(c)...)
	r, stdout, err := runMeasured(c, name, args)
	if err != nil {
		return nil, err
	}
	var res *audit.Result
	if withEvidence {
		bundle, err := evidence.Load(ev)
		if err != nil {
			return nil, err
		}
		if len(bundle.Audits) != 1 {
			return nil, fmt.Errorf("evidence %s: want one audit", ev)
		}
		res = bundle.Audits[0].Result
	} else {
		res = new(audit.Result)
		f, err := os.Open(stdout)
		if err != nil {
			return nil, err
		}
		err = json.NewDecoder(f).Decode(res)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("relaylock's JSON on stdout: %w", err)
		}
	}
	if len(res.Targets) != len(hosts) {
		return nil, fmt.Errorf("%s: %d targets in the result, want %d", name, len(res.Targets), len(hosts))
	}
	var tests int
	for i, t := range res.Targets {
		if t.Verdict == audit.VerdictOpen {
			r.Found = append(r.Found, i)
		}
		if t.Verdict != audit.VerdictOpen && t.Verdict != audit.VerdictClosed {
			r.Missed = append(r.Missed, fmt.Sprintf("%s: %s %s", t.Target, t.Verdict, t.Reason))
		}
		for _, ep := range t.Endpoints {
			for _, ts := range ep.Tests {
				if ts.Outcome != audit.OutcomeSkipped {
					tests++
				}
			}
			if ep.Verdict == audit.VerdictClosed {
				r.SettleMax = max(r.SettleMax, ep.End.Sub(ep.Start))
			}
		}
	}
	r.TestsPer = float64(tests) / float64(len(hosts))
	return r, nil
}

// tuning is the speed flags the bench was told to set (none by default).
func tuning(c config) []string {
	var out []string
	if c.Concurrency > 0 {
		out = append(out, "--concurrency", strconv.Itoa(c.Concurrency))
	}
	if c.PerHost > 0 {
		out = append(out, "--per-host", strconv.Itoa(c.PerHost))
	}
	if c.Rate > 0 {
		out = append(out, "--rate", strconv.FormatFloat(c.Rate, 'f', -1, 64))
	}
	return out
}

// runAddresses audits c.Addresses address targets on 127.2.0.0/16 at a
// port where nothing listens: memory at scale, with the JSON on stdout.
func runAddresses(c config) (*toolResult, error) {
	l, err := net.Listen("tcp", "127.2.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: every connect is refused
	tf := filepath.Join(c.Work, "addresses.txt")
	var b strings.Builder
	for i := range c.Addresses {
		fmt.Fprintf(&b, "127.2.%d.%d:%d\n", i/250, i%250+1, port)
	}
	if err := os.WriteFile(tf, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"audit", "--targets", tf, "--format", "json", "--helo", "probe.bench.test",
		"--probe-domain", "example.net", "--mail-domain", "bench.test"}, tuning(c)...)
	r, stdout, err := runMeasured(c, fmt.Sprintf("relaylock, %d address targets, nothing listening", c.Addresses), args)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(stdout)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res audit.Result
	if err := json.NewDecoder(f).Decode(&res); err != nil {
		return nil, fmt.Errorf("relaylock's JSON on stdout: %w", err)
	}
	if len(res.Targets) != c.Addresses {
		return nil, fmt.Errorf("%d targets in the result, want %d", len(res.Targets), c.Addresses)
	}
	for _, t := range res.Targets {
		if t.Verdict != audit.VerdictInconclusive {
			r.Missed = append(r.Missed, fmt.Sprintf("%s: %s (nothing listens there)", t.Target, t.Verdict))
		}
	}
	return r, nil
}

// runMeasured runs relaylock with args, stdout to a file and stderr to
// another, sampling its RSS; exit codes 0, 3 (open) and 5 (inconclusive)
// are results.
func runMeasured(c config, name string, args []string) (*toolResult, string, error) {
	stdoutPath := filepath.Join(c.Work, "relaylock.stdout")
	out, err := os.Create(stdoutPath)
	if err != nil {
		return nil, "", err
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(c.Work, "relaylock.stderr"))
	if err != nil {
		return nil, "", err
	}
	defer errf.Close()
	cmd := exec.Command(c.Relaylock, args...)
	cmd.Stdout, cmd.Stderr = out, errf
	shown := args
	if len(shown) > 12 {
		shown = shown[:12]
	}
	fmt.Fprintf(c.Out, "relaybench: %s %s\n", c.Relaylock, strings.Join(shown, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	samples := sampleRSS(cmd.Process.Pid)
	err = cmd.Wait()
	r := &toolResult{Name: name, Wall: time.Since(start)}
	rss := <-samples
	log, _ := os.ReadFile(errf.Name())
	if m := doneRE.FindSubmatch(log); m != nil {
		r.ProbeWall, _ = time.ParseDuration(string(m[1]))
		for _, s := range rss {
			if s.t <= r.ProbeWall {
				r.ProbeRSS = max(r.ProbeRSS, s.rss)
			}
		}
	}
	if m := concRE.FindAllSubmatch(log, -1); m != nil {
		r.Concur = string(m[len(m)-1][1])
	}
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && (ee.ExitCode() == 3 || ee.ExitCode() == 5)) {
		return nil, "", fmt.Errorf("relaylock: %w\n%s", err, lastLines(string(log), 20))
	}
	r.MaxRSS = peakRSS(rss, cmd.ProcessState)
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, stdoutPath, nil
}

// concRE finds relaylock's lines about its in-flight bound backing off.
var concRE = regexp.MustCompile(`relaylock: (up to \d+ .*endpoints at once.*)`)

// doneRE finds relaylock's "all N targets done (DURATION)" line.
var doneRE = regexp.MustCompile(`all \d+ targets done \(([0-9.a-zµ]+)\)`)

type rssSample struct {
	t   time.Duration
	rss int64
	hwm int64 // VmHWM: the peak RSS so far
}

// peakRSS is the process's peak RSS: its last VmHWM sample, else the
// kernel's ru_maxrss. (On Linux ru_maxrss of a child counts the memory of
// the parent it was started from, this bench's hundreds of servers, so
// the /proc peak comes first.)
func peakRSS(samples []rssSample, ps *os.ProcessState) int64 {
	var peak int64
	for _, s := range samples {
		peak = max(peak, s.hwm, s.rss)
	}
	if peak == 0 {
		return maxRSS(ps)
	}
	return peak
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
			smp := rssSample{t: time.Since(start)}
			for _, l := range strings.Split(string(data), "\n") {
				if f := strings.Fields(l); len(f) == 3 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					if f[0] == "VmRSS:" {
						smp.rss = kb * 1024
					} else {
						smp.hwm = kb * 1024
					}
				}
			}
			if smp.rss > 0 {
				out = append(out, smp)
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
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	samples := sampleRSS(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		tail, _ := os.ReadFile(out.Name())
		return nil, fmt.Errorf("nmap: %w\n%s", err, lastLines(string(tail), 20))
	}
	r := &toolResult{Name: "nmap", Wall: time.Since(start), MaxRSS: peakRSS(<-samples, cmd.ProcessState), TestsPer: 16,
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
	fmt.Fprintln(tw, "tool\truns\twall (range)\tCPU\tpeak RSS (range)\tprobe phase (RSS)\thosts/s\ttests/host\tMAIL/host\tfound open\ttruly open\tfalse pos.\tmissed\tRT/host\tconns/host\tmost conns at once to one host\tslowest closed\t")
	for _, t := range rep.Tools {
		fp, miss := score(t.Found, hosts)
		settle, probe := "-", "-"
		if t.ProbeWall > 0 {
			probe = fmt.Sprintf("%s (%.0f MB)", t.ProbeWall.Round(time.Millisecond), float64(t.ProbeRSS)/(1<<20))
		}
		if t.SettleMax > 0 {
			settle = t.SettleMax.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%d\t%s\t\n", t.Name, max(t.Runs, 1), wallText(t), t.CPU.Round(time.Millisecond),
			rssText(t), probe, float64(rep.Hosts)/t.Wall.Seconds(), t.TestsPer, t.MailPer, len(t.Found), rep.Open, fp, miss, t.RTPer, t.ConnsPer, t.MaxAtOnce, settle)
	}
	tw.Flush()
	var nmap *toolResult
	for _, t := range rep.Tools {
		if t.Name == "nmap" {
			nmap = t
		}
	}
	for _, t := range rep.Tools {
		if t != nmap && nmap != nil {
			fmt.Fprintf(w, "relaybench: %s is %.1fx faster than nmap (median of %d runs against %d nmap run) and runs %.1fx its tests per host\n",
				t.Name, nmap.Wall.Seconds()/t.Wall.Seconds(), t.Runs, max(nmap.Runs, 1), t.TestsPer/nmap.TestsPer)
		}
		if t.Concur != "" {
			fmt.Fprintf(w, "relaybench: %s: last in-flight change: %s\n", t.Name, t.Concur)
		}
	}
	if a := rep.Addresses; a != nil {
		fmt.Fprintf(w, "relaybench: %s: wall %s, peak RSS %s, median of %d runs; %d targets not inconclusive\n",
			a.Name, wallText(a), rssText(a), a.Runs, len(a.Missed))
	}
	for _, t := range append(rep.Tools, rep.Addresses) {
		if t == nil {
			continue
		}
		for i, m := range t.Missed {
			if i == 10 {
				fmt.Fprintf(w, "relaybench: %s: ... %d more\n", t.Name, len(t.Missed)-10)
				break
			}
			fmt.Fprintf(w, "relaybench: %s: not decided: %s\n", t.Name, m)
		}
	}
}

func wallText(t *toolResult) string {
	if t.Runs > 1 {
		return fmt.Sprintf("%s (%s-%s)", t.Wall.Round(10*time.Millisecond), t.WallLo.Round(10*time.Millisecond), t.WallHi.Round(10*time.Millisecond))
	}
	return t.Wall.Round(10 * time.Millisecond).String()
}

func rssText(t *toolResult) string {
	if t.Runs > 1 {
		return fmt.Sprintf("%.0f MB (%.0f-%.0f)", float64(t.MaxRSS)/(1<<20), float64(t.RSSLo)/(1<<20), float64(t.RSSHi)/(1<<20))
	}
	return fmt.Sprintf("%.0f MB", float64(t.MaxRSS)/(1<<20))
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
