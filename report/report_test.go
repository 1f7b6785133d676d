package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

var (
	update = flag.Bool("update", false, "rewrite testdata/*.golden")
	pdfOut = flag.String("pdf", "", "also write the fixture report to this file, to look at it")
)

// needTool skips when a PDF tool is missing, except in CI, where a
// missing tool fails the test (it must never be skipped silently there).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		needs.Missing(t, name, "apt-get install poppler-utils qpdf (.ci/setup.d/50-pdf.sh)")
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func renderFixture(t testing.TB, b *evidence.Bundle, opts Options) ([]byte, *layout) {
	t.Helper()
	var buf bytes.Buffer
	lay, err := render(&buf, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), lay
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeterministic(t *testing.T) {
	b := fixtureBundle()
	one, _ := renderFixture(t, b, Options{})
	two, _ := renderFixture(t, fixtureBundle(), Options{})
	if !bytes.Equal(one, two) {
		t.Fatal("the same evidence rendered two different PDFs")
	}
	// Recording the report (an artifact, a log line, a new Updated) and
	// sealing does not change the rendering, so a report can be
	// re-rendered from the final evidence and compared byte for byte.
	b.Artifacts = append(b.Artifacts, evidence.Artifact{Name: "report.pdf", SHA256: strings.Repeat("0", 64), Kind: "report"})
	b.Log = append(b.Log, evidence.LogEntry{Step: "report", Message: "rendered"})
	b.Updated = b.Updated.Add(3600e9)
	if err := evidence.Seal(b); err != nil {
		t.Fatal(err)
	}
	three, _ := renderFixture(t, b, Options{})
	if !bytes.Equal(one, three) {
		t.Error("recording the report as an artifact changed the rendering")
	}
	// The evidence content does change it.
	b.Engagement.Operator = "mallory"
	four, _ := renderFixture(t, b, Options{})
	if bytes.Equal(one, four) {
		t.Error("a different operator rendered the same PDF")
	}
}

func TestPDFStructure(t *testing.T) {
	for _, tool := range []string{"qpdf", "pdffonts", "pdftotext", "pdfinfo"} {
		needTool(t, tool)
	}
	b := fixtureBundle()
	data, lay := renderFixture(t, b, Options{EvidenceSHA256: strings.Repeat("f", 64)})
	p := writeTemp(t, data)
	if *pdfOut != "" {
		os.WriteFile(*pdfOut, data, 0o600)
	}
	digest, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("qpdf check", func(t *testing.T) {
		run(t, "qpdf", "--check", p)
	})
	t.Run("fonts embedded", func(t *testing.T) {
		out := run(t, "pdffonts", p)
		lines := strings.Split(strings.TrimSpace(out), "\n")[2:]
		if len(lines) != 4 {
			t.Errorf("%d fonts, want 4 (Go regular, bold, italic, mono):\n%s", len(lines), out)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			// name type... encoding emb sub uni object ID
			if len(f) < 7 || f[len(f)-5] != "yes" || !strings.Contains(l, "CID TrueType") {
				t.Errorf("font not embedded as TrueType: %s", l)
			}
		}
	})
	info := run(t, "pdfinfo", "-isodates", p)
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("no page count:\n%s", info)
	}
	pages, _ := strconv.Atoi(m[1])
	t.Run("dates from evidence in UTC", func(t *testing.T) {
		want := contentTime(b).Format("2006-01-02T15:04:05Z")
		if !regexp.MustCompile(`(?m)^CreationDate:\s+` + want + `$`).MatchString(info) {
			t.Errorf("creation date not %s:\n%s", want, info)
		}
	})
	text := run(t, "pdftotext", "-layout", p, "-")
	t.Run("text", func(t *testing.T) {
		for _, want := range []string{"RLY-001", "RLY-002", "CFG-001", digest, strings.Repeat("f", 64),
			"2 open relays found · 2 remediated · 0 open on re-test", "V-259687", "CCI-001308", "In plain words",
			"OPEN", "CLOSED", "INCONCLUSIVE", "NOT RE-TESTED", "[2001:db8::25]:25"} {
			if !strings.Contains(text, want) {
				t.Errorf("text lacks %q", want)
			}
		}
		pageTexts := strings.Split(text, "\f")
		for i := 1; i <= pages; i++ {
			want := fmt.Sprintf("Page %d of %d", i, pages)
			if !strings.Contains(pageTexts[i-1], want) {
				t.Errorf("page %d lacks %q", i, want)
			}
		}
	})
	t.Run("no escaped line feeds", func(t *testing.T) {
		// Our own texts join lines with real line breaks; a literal \n
		// (as in "Verdict INCONCLUSIVE\nRCPT answered 451") is a bug.
		// The fixture's hostile strings hold no line feed.
		for i, l := range strings.Split(text, "\n") {
			if strings.Contains(l, `\n`) {
				t.Errorf("line %d shows an escaped line feed: %q", i+1, l)
			}
		}
	})
	t.Run("hostile strings visible", func(t *testing.T) {
		for _, want := range []string{`<U+1F600>`, `bell\x07`, `nul\x00`, "bad\uFFFD\uFFFD", `rtl<U+202E>evil<U+202C>`, `zwsp<U+200B>`, `<U+05E9>`, `<U+4E2D>`, `tab\tend\r`, "» XXXX"} {
			if !strings.Contains(text, want) {
				t.Errorf("text lacks %q", want)
			}
		}
		for _, bad := range []string{"😀", "\u202E", "\x07", "中"} {
			if strings.Contains(text, bad) {
				t.Errorf("raw %q reached the PDF", bad)
			}
		}
		// The 10 kB line is wrapped, not cut: every X is there.
		if n := strings.Count(text, "X"); n < 10240 {
			t.Errorf("%d X characters in the text, want at least 10240 (the long line was cut)", n)
		}
	})
	t.Run("bookmarks", func(t *testing.T) {
		checkOutline(t, p, lay.Outline, pages)
	})
	t.Run("contents links", func(t *testing.T) {
		checkLinks(t, p, lay.TOC)
	})
	t.Run("golden text", func(t *testing.T) {
		golden(t, "testdata/report.golden", normalize(text))
	})
}

// checkOutline compares the PDF's outline (qpdf --json) with the
// bookmarks render made, title and page, in order.
func checkOutline(t *testing.T, pdf string, want []outlineEntry, pages int) {
	t.Helper()
	var doc struct {
		Outlines []qpdfOutline `json:"outlines"`
	}
	if err := json.Unmarshal([]byte(run(t, "qpdf", "--json", "--json-key=outlines", pdf)), &doc); err != nil {
		t.Fatal(err)
	}
	var got []outlineEntry
	var walk func([]qpdfOutline, int)
	walk = func(os []qpdfOutline, level int) {
		for _, o := range os {
			if o.Page == nil {
				t.Errorf("bookmark %q points to no page", o.Title)
				continue
			}
			got = append(got, outlineEntry{o.Title, level, *o.Page})
			walk(o.Kids, level+1)
		}
	}
	walk(doc.Outlines, 0)
	if len(got) != len(want) {
		t.Fatalf("%d bookmarks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bookmark %d: %+v, want %+v", i, got[i], want[i])
		}
		if got[i].Page < 1 || got[i].Page > pages {
			t.Errorf("bookmark %q on page %d of %d", got[i].Title, got[i].Page, pages)
		}
	}
}

// checkLinks reads the link annotations of the contents pages (qpdf) and
// checks that, in order, they point to the pages of the contents entries
// (each entry links its title and its page number).
func checkLinks(t *testing.T, pdf string, toc []outlineEntry) {
	t.Helper()
	var doc struct {
		Pages []struct {
			Object string `json:"object"`
			Pos    int    `json:"pageposfrom1"`
		} `json:"pages"`
	}
	if err := json.Unmarshal([]byte(run(t, "qpdf", "--json", "--json-key=pages", pdf)), &doc); err != nil {
		t.Fatal(err)
	}
	posOf := map[string]int{}
	for _, p := range doc.Pages {
		posOf[strings.TrimSuffix(p.Object, " 0 R")] = p.Pos
	}
	reDest := regexp.MustCompile(`/Dest \[ (\d+) 0 R`)
	var got []int
	for _, p := range doc.Pages[1:] { // the cover has no links
		obj := strings.TrimSuffix(p.Object, " 0 R")
		dests := reDest.FindAllStringSubmatch(run(t, "qpdf", "--show-object="+obj, pdf), -1)
		if len(dests) == 0 {
			break // past the contents
		}
		for _, d := range dests {
			pos, ok := posOf[d[1]]
			if !ok {
				t.Fatalf("link on page %d points to object %s, not a page", p.Pos, d[1])
			}
			got = append(got, pos)
		}
	}
	if len(got) != 2*len(toc) {
		t.Fatalf("%d links on the contents pages, want %d", len(got), 2*len(toc))
	}
	for i, e := range toc {
		if got[2*i] != e.Page || got[2*i+1] != e.Page {
			t.Errorf("contents entry %q links to pages %d and %d, want %d", e.Title, got[2*i], got[2*i+1], e.Page)
		}
	}
}

type qpdfOutline struct {
	Title string        `json:"title"`
	Page  *int          `json:"destpageposfrom1"`
	Kids  []qpdfOutline `json:"kids"`
}

var (
	reHash   = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reFooter = regexp.MustCompile(`· [0-9a-f]{16}\b`)
	reSpaces = regexp.MustCompile(`  +`)
)

// normalize hides the hashes of the fixture's JSON: they change whenever
// a field is added to the shared result types, which is not a change of
// the report. Runs of spaces (pdftotext's layout, which shifts with the
// width of proportional hex digits) become two spaces.
func normalize(s string) string {
	s = reHash.ReplaceAllString(s, "<sha256>")
	s = reFooter.ReplaceAllString(s, "· <digest16>")
	return reSpaces.ReplaceAllString(s, "  ")
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run go test -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}

func TestModel(t *testing.T) {
	m, err := buildModel(fixtureBundle())
	if err != nil {
		t.Fatal(err)
	}
	var ids, statuses []string
	for _, f := range m.findings {
		ids = append(ids, f.ID)
		statuses = append(statuses, f.StatusKey)
	}
	if got := strings.Join(ids, " "); got != "RLY-001 RLY-002 CFG-001" {
		t.Errorf("findings %s", got)
	}
	if got := strings.Join(statuses, " "); got != "remediated remediated open" {
		t.Errorf("statuses %s", got)
	}
	var grid []string
	for _, r := range m.rows {
		grid = append(grid, r.Key.String()+"="+r.beforeStatus()+">"+r.afterStatus())
	}
	want := []string{
		"mx1.example.com 192.0.2.10:25=OPEN>CLOSED",
		"mx2.example.com [2001:db8::25]:25=OPEN>CLOSED",
		"mx2.example.com [2001:db8::25]:587 STARTTLS=CLOSED>CLOSED",
		"closed.example.net 198.51.100.7:25=CLOSED>NOT RE-TESTED",
		"flaky.example.org 203.0.113.5:25=INCONCLUSIVE>NOT RE-TESTED",
	}
	if strings.Join(grid, "\n") != strings.Join(want, "\n") {
		t.Errorf("grid:\n%s\nwant:\n%s", strings.Join(grid, "\n"), strings.Join(want, "\n"))
	}
	if f, r, a, u := m.counts(); f != 2 || r != 2 || a != 0 || u != 0 {
		t.Errorf("counts %d %d %d %d", f, r, a, u)
	}
	if c := m.findings[1].Controls; !strings.Contains(c, "V-259687") || !strings.Contains(c, "CCI-001308") {
		t.Errorf("Exchange 2019 mailbox controls %q", c)
	}
	if c := m.findings[0].Controls; strings.Contains(c, "STIG") {
		t.Errorf("IIS finding mapped to an Exchange STIG: %q", c)
	}
}

func TestStatusAfterRollback(t *testing.T) {
	b := fixtureBundle()
	// mx1 is rolled back and the rollback re-test finds it open again.
	b.Changes = append(b.Changes, b.Changes[0])
	b.Changes[2].ID, b.Changes[2].Kind, b.Changes[2].Result = "RL-CHG-0003", "rollback", "applied"
	re := *b.Audits[1].Result
	re.Targets = append([]audit.TargetResult(nil), re.Targets...)
	re.Targets[0].Endpoints = append(re.Targets[0].Endpoints[:0:0], re.Targets[0].Endpoints...)
	re.Targets[0].Endpoints[0].Verdict = "open"
	b.Audits = append(b.Audits, evidence.AuditRun{Purpose: "rollback-retest", Host: "mx1.example.com", Result: &re})
	m, err := buildModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.findings[0].StatusKey; got != "open_after" {
		t.Errorf("status %s, want open_after", got)
	}
	if f, r, a, u := m.counts(); f != 2 || r != 1 || a != 1 || u != 0 {
		t.Errorf("counts %d %d %d %d, want 2 1 1 0", f, r, a, u)
	}
}

// No relay found, but an endpoint could not be tested: the cover says not
// verified, in amber, not "No open relay found" in green.
func TestCoverNoneFoundButUntested(t *testing.T) {
	needTool(t, "pdftotext")
	b := fixtureBundle()
	b.Audits = b.Audits[:1]
	first := *b.Audits[0].Result
	first.Targets = append([]audit.TargetResult(nil), first.Targets...)
	for i := range first.Targets {
		first.Targets[i].Endpoints = append(first.Targets[i].Endpoints[:0:0], first.Targets[i].Endpoints...)
		for j := range first.Targets[i].Endpoints {
			if first.Targets[i].Endpoints[j].Verdict == audit.VerdictOpen {
				first.Targets[i].Endpoints[j].Verdict = audit.VerdictClosed
			}
		}
	}
	b.Audits[0].Result = &first
	m, err := buildModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if f, _, _, _ := m.counts(); f != 0 || m.untested() != 1 {
		t.Fatalf("found %d, untested %d; want 0 and 1 (the fixture's flaky endpoint)", f, m.untested())
	}
	data, _ := renderFixture(t, b, Options{})
	text := strings.Join(strings.Fields(run(t, "pdftotext", "-l", "1", writeTemp(t, data), "-")), " ")
	if !strings.Contains(text, "No open relay found, but 1 of") || !strings.Contains(text, "not verified") {
		t.Errorf("cover does not say an endpoint was not verified:\n%s", text)
	}
}

// A relay whose change was applied but whose re-test could not decide, or
// did not cover its endpoint (a re-test of another port), is not
// remediated: the cover says "not verified" and is not green.
func TestCoverUnverifiedRetest(t *testing.T) {
	needTool(t, "pdftotext")
	tests := []struct {
		name string
		edit func(ep *audit.EndpointResult)
	}{
		{"inconclusive", func(ep *audit.EndpointResult) { ep.Verdict = audit.VerdictInconclusive }},
		{"another port", func(ep *audit.EndpointResult) { ep.Port = 2525 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := fixtureBundle()
			re := *b.Audits[1].Result
			re.Targets = append([]audit.TargetResult(nil), re.Targets...)
			re.Targets[0].Endpoints = append(re.Targets[0].Endpoints[:0:0], re.Targets[0].Endpoints...)
			tc.edit(&re.Targets[0].Endpoints[0])
			b.Audits[1].Result = &re
			m, err := buildModel(b)
			if err != nil {
				t.Fatal(err)
			}
			f, r, a, u := m.counts()
			if f != 2 || r != 1 || a != 0 || u != 1 {
				t.Errorf("counts %d %d %d %d, want 2 1 0 1", f, r, a, u)
			}
			if c := verdictColor(f, r, a, u, 0, m.retested); c != colUnknown {
				t.Errorf("cover colour %v, want amber %v (not green %v)", c, colUnknown, colClosed)
			}
			data, _ := renderFixture(t, b, Options{})
			text := strings.Join(strings.Fields(run(t, "pdftotext", "-l", "1", writeTemp(t, data), "-")), " ")
			if !strings.Contains(text, "1 remediated · 0 open on re-test · 1 not verified") {
				t.Errorf("cover does not say the relay is not verified:\n%s", text)
			}
		})
	}
}

func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, TextsFile), []byte("# German\n[title]\nPrüfbericht offene SMTP-Relays\n\n[footer]\nSeite {page} von {pages}\n\n[labels.rows]\nEndpoint | Endpunkt\nVantage: %s | Standort: %s\n"), 0o644)
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for x := range 40 {
		for y := range 20 {
			img.Set(x, y, color.RGBA{31, 78, 121, 255})
		}
	}
	var logo bytes.Buffer
	png.Encode(&logo, img)
	os.WriteFile(filepath.Join(dir, LogoFile), logo.Bytes(), 0o644)
	noClient := fixtureBundle()
	noClient.Engagement.Client = "" // --client names the client of evidence without one
	data, _ := renderFixture(t, noClient, Options{TemplateDir: dir, Client: "Beispiel AG"})
	plain, _ := renderFixture(t, fixtureBundle(), Options{})
	if bytes.Equal(data, plain) {
		t.Fatal("template made no difference")
	}
	if !bytes.Contains(data, []byte("/Subtype /Image")) {
		t.Error("logo not embedded")
	}
	if _, err := exec.LookPath("pdftotext"); err != nil && os.Getenv("CI") == "" {
		return
	}
	text := run(t, needTool(t, "pdftotext"), writeTemp(t, data), "-")
	for _, want := range []string{"Prüfbericht offene SMTP-Relays", "Seite 1 von", "Beispiel AG", "Executive summary", "Endpunkt", "Standort: 198.51.100.200"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}

	t.Run("unknown key", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, TextsFile), []byte("[titel]\nx\n"), 0o644)
		_, err := render(&bytes.Buffer{}, fixtureBundle(), Options{TemplateDir: dir})
		if err == nil || !strings.Contains(err.Error(), "titel") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("bad logo", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "logo.png")
		os.WriteFile(p, []byte("GIF89a"), 0o644)
		if _, err := render(&bytes.Buffer{}, fixtureBundle(), Options{LogoPNG: p}); err == nil {
			t.Error("a GIF was accepted as the PNG logo")
		}
	})
}

func TestDefaultTexts(t *testing.T) {
	tx := defaultTexts()
	// Every key the renderer asks for exists.
	var src []byte
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, data...)
	}
	for _, m := range regexp.MustCompile(`t\.(?:get|rows)\("([a-z._]+[a-z])"`).FindAllStringSubmatch(string(src), -1) {
		if _, ok := tx[m[1]]; !ok {
			t.Errorf("the renderer uses text [%s], not in texts.txt", m[1])
		}
	}
	// Every label the renderer translates is listed for translators.
	labels := tx.labels()
	for _, m := range regexp.MustCompile(`r\.ls?\(((?:"[^"]*"(?:, )?)+)\)`).FindAllStringSubmatch(string(src), -1) {
		for _, l := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(m[1], -1) {
			if _, ok := labels[l[1]]; !ok {
				t.Errorf("renderer label %q is not in [labels.rows]", l[1])
			}
		}
	}
	r := &renderer{t: tx}
	if got := r.foundText(1); got != "1 open relay found" {
		t.Errorf("singular %q", got)
	}
	for _, w := range []string{stOpen, stClosed, stInconclusive, stNotRetested, stNotTested} {
		if _, ok := labels[w]; !ok {
			t.Errorf("status word %q is not in [labels.rows]", w)
		}
	}
	for _, k := range []string{"open", "open_after", "remediated", "resolved", "remediated_unverified", "inconclusive", "config_remediated"} {
		if _, ok := tx["status."+k]; !ok {
			t.Errorf("no [status.%s]", k)
		}
	}
	if got := tx.get("cover.verdict", "found", r.foundText(3), "remediated", "3", "open_after", "0"); got != "3 open relays found · 3 remediated · 0 open on re-test" {
		t.Errorf("verdict %q", got)
	}
	for _, bad := range []string{"text\n[a]\n", "[a]\nx\n[a]\ny\n", "[]\n"} {
		if _, err := parseTexts("t", bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.pdf")
	if prov, err := WriteFile(p, fixtureBundle(), Options{}); err != nil || prov != (Provenance{}) {
		t.Fatal(prov, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	if !bytes.HasPrefix(data, []byte("%PDF-1.")) || !bytes.HasSuffix(bytes.TrimSpace(data), []byte("%%EOF")) {
		t.Error("not a complete PDF")
	}
	if err := Render(&bytes.Buffer{}, nil, Options{}); !errors.Is(err, ErrRender) {
		t.Errorf("nil bundle: %v", err)
	}
}

// TestFixtureEvidence keeps testdata/fixture.evidence.json, the fixture
// as an evidence file, for the CLI tests (cmd/relaylock); -update rewrites
// it.
func TestFixtureEvidence(t *testing.T) {
	const p = "testdata/fixture.evidence.json"
	if *update {
		if err := evidence.Save(p, fixtureBundle()); err != nil {
			t.Fatal(err)
		}
	}
	_, r, err := evidence.CheckFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if len(r.Problems) > 0 {
		t.Errorf("fixture evidence does not verify: %q (run go test -update)", r.Problems)
	}
}

func TestEmptyBundle(t *testing.T) {
	data, _ := renderFixture(t, evidence.New(base), Options{})
	if len(data) == 0 {
		t.Fatal("empty output")
	}
}

// findingTexts returns the text of each finding's details block, from
// its heading to the next one (pdftotext of the details pages).
func findingTexts(t *testing.T, pdf string, lay *layout) map[string]string {
	t.Helper()
	var ids []string
	first, last := 0, 0
	for _, e := range lay.TOC {
		switch {
		case e.Level == 1:
			ids = append(ids, strings.Fields(e.Title)[0])
			if first == 0 {
				first = e.Page
			}
		case first != 0 && last == 0:
			last = e.Page // the section after the details
		}
	}
	text := run(t, "pdftotext", "-f", fmt.Sprint(first), "-l", fmt.Sprint(last), pdf, "-")
	out := map[string]string{}
	heading := func(id string) int {
		loc := regexp.MustCompile(`(?m)^` + id + `\s+\S`).FindStringIndex(text)
		if loc == nil {
			return -1
		}
		return loc[0]
	}
	for i, id := range ids {
		start := heading(id)
		if start < 0 {
			t.Fatalf("no heading for %s in the details", id)
		}
		end := len(text)
		if i+1 < len(ids) {
			if e := heading(ids[i+1]); e > start {
				end = e
			}
		}
		out[id] = strings.Join(strings.Fields(text[start:end]), " ")
	}
	return out
}

// TestRelayAdvicePerPlatform: the advice of a relay finding is for the
// platform of the host behind it, and cites public documents only.
func TestRelayAdvicePerPlatform(t *testing.T) {
	needTool(t, "pdftotext")
	b := fixtureBundle()
	// mx1 runs IIS SMTP, mx2 Exchange 2019; then mx1 as Exchange 2003.
	data, lay := renderFixture(t, b, Options{})
	got := findingTexts(t, writeTemp(t, data), lay)
	iis, exch := got["RLY-001"], got["RLY-002"]
	for _, bad := range []string{"Exchange", "receive connector", "Accept-Any-Recipient", "RemoteIPRanges"} {
		if strings.Contains(iis, bad) {
			t.Errorf("the IIS finding carries Exchange advice (%q):\n%s", bad, iis)
		}
	}
	for _, bad := range []string{"IIS", "virtual server", "Only the list below"} {
		if strings.Contains(exch, bad) {
			t.Errorf("the Exchange 2019 finding carries IIS advice (%q):\n%s", bad, exch)
		}
	}
	if !strings.Contains(iis, "Relay restrictions") || !strings.Contains(exch, "Allow anonymous relay on Exchange servers") {
		t.Errorf("platform advice missing:\nIIS: %s\nExchange: %s", iis, exch)
	}

	b = fixtureBundle()
	b.Inspections[0].Platform = remediate.PlatformExchange2003
	b.Inspections[0].HostInfo.ExchangeVersion = "2003"
	data, lay = renderFixture(t, b, Options{})
	ex2003 := findingTexts(t, writeTemp(t, data), lay)["RLY-001"]
	if !strings.Contains(ex2003, "Exchange System Manager") || strings.Contains(ex2003, "RemoteIPRanges") {
		t.Errorf("Exchange 2003 advice:\n%s", ex2003)
	}
}

// TestNoPrivateDocumentCited: texts that reach the report (report texts,
// finding titles, details and advice, test titles and reasons) cite
// Microsoft documentation or RFCs, never the project's design notes,
// which do not ship.
func TestNoPrivateDocumentCited(t *testing.T) {
	private := regexp.MustCompile(`(windows-relay|relay-probes|reporting|winrm)\.md`)
	for k, v := range defaultTexts() {
		if private.MatchString(v) {
			t.Errorf("text [%s] cites %s", k, private.FindString(v))
		}
	}
	fset := token.NewFileSet()
	for _, dir := range []string{"../remediate", "../audit", "."} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range files {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, 0) // no comments: they do not ship
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && private.MatchString(lit.Value) {
					t.Errorf("%s: string cites %s: %s", fset.Position(lit.Pos()), private.FindString(lit.Value), lit.Value)
				}
				return true
			})
		}
	}
}

// nearEmptyPages returns the pages that continue a section (they do not
// start with a section title) with fewer than min lines of body text.
func nearEmptyPages(t *testing.T, pdf string, lay *layout, min int) []string {
	t.Helper()
	sections := map[string]bool{}
	for _, e := range lay.TOC {
		if e.Level == 0 {
			sections[e.Title] = true
		}
	}
	var bad []string
	for i, page := range strings.Split(run(t, "pdftotext", "-layout", pdf, "-"), "\f") {
		var body []string
		for _, l := range strings.Split(page, "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "Page ") || strings.HasPrefix(l, "SMTP Open-Relay Assessment and Remediation Evidence ·") {
				continue
			}
			body = append(body, l)
		}
		if i == 0 || len(body) == 0 || sections[body[0]] || body[0] == "Contents" {
			continue
		}
		if len(body) < min {
			bad = append(bad, fmt.Sprintf("page %d: %q", i+1, body))
		}
	}
	return bad
}

// TestNoNearEmptyPage: a table or a transcript never spills a last row
// or two onto a page of its own (the orphan "Evidence hashes" row). The
// last finding's detail is lengthened step by step, so that its details
// block, the last before a new section, ends at every point of a page.
func TestNoNearEmptyPage(t *testing.T) {
	needTool(t, "pdftotext")
	for k := 0; k <= 128; k += 8 {
		b := fixtureBundle()
		f := &b.Inspections[2].Findings[0]
		f.Detail += strings.Repeat(" Every host in this range may relay.", k)
		data, lay := renderFixture(t, b, Options{})
		if bad := nearEmptyPages(t, writeTemp(t, data), lay, 8); len(bad) > 0 {
			t.Errorf("detail +%d sentences: near-empty pages:\n%s", k, strings.Join(bad, "\n"))
		}
	}
	// The same for the last transcript of Appendix A.
	for k := 0; k <= 80; k += 10 {
		b := fixtureBundle()
		tr := &b.Audits[len(b.Audits)-1].Result.Targets[0].Endpoints[1].Transcripts[0]
		for i := range k {
			tr.Lines = append(tr.Lines, audit.TranscriptLine{T: tr.End, Dir: "S", Text: fmt.Sprintf("250-extra line %d", i)})
		}
		data, lay := renderFixture(t, b, Options{})
		if bad := nearEmptyPages(t, writeTemp(t, data), lay, 8); len(bad) > 0 {
			t.Errorf("transcript +%d lines: near-empty pages:\n%s", k, strings.Join(bad, "\n"))
		}
	}
}

// demoRelayIPList is the RelayIpList the IIS lab writes for 192.0.2.10 and
// 192.0.2.11 ("only the list below"), as the evidence records it.
const demoRelayIPList = "18000080200000803C00008044000080010000004C00000000000000000000000100000002000000020000000300000004000000000000004C00008000000000000000000000000000000000FFFFFFFFC000020AC000020B"

// TestEncodedValuesInAppendix: hex and base64 never appear in the body of
// the report; it shows them decoded, with a reference to Appendix D,
// which holds them exactly as recorded.
func TestEncodedValuesInAppendix(t *testing.T) {
	needTool(t, "pdftotext")
	b := fixtureBundle()
	raw := remediate.Change{Object: "SmtpSvc/1", Setting: "RelayIpList.raw", Current: "EMPTY", New: demoRelayIPList, Why: "exact value written"}
	b.Changes[0].Applied = append(b.Changes[0].Applied, raw)
	b.Changes[0].Planned = append(b.Changes[0].Planned, raw)
	b.Changes[0].After = append(b.Changes[0].After, remediate.Setting{Object: "SmtpSvc/1", Name: "RelayIpList.raw", Value: demoRelayIPList})
	data, lay := renderFixture(t, b, Options{})
	p := writeTemp(t, data)
	appendix := 0
	for _, e := range lay.TOC {
		if strings.HasPrefix(e.Title, "Appendix D") {
			appendix = e.Page
		}
	}
	if appendix == 0 {
		t.Fatal("no Appendix D in the contents")
	}
	body := run(t, "pdftotext", "-l", fmt.Sprint(appendix-1), p, "-")
	app := run(t, "pdftotext", "-f", fmt.Sprint(appendix), p, "-")
	flat := strings.Join(strings.Fields(body), " ")
	for _, m := range regexp.MustCompile(`[0-9A-Fa-f]{32,}`).FindAllString(flat, -1) {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(m) { // SHA-256 hashes are printed on purpose
			t.Errorf("hex in the body: %s", m)
		}
	}
	for _, enc := range []string{"U210cFN2Yy8x", "UmVsYXlJcExpc3Q="} { // base64 of SmtpSvc/1 and RelayIpList
		if strings.Contains(body, enc) {
			t.Errorf("base64 %s in the body", enc)
		}
		if !strings.Contains(app, enc) {
			t.Errorf("base64 %s not in Appendix D", enc)
		}
	}
	for _, want := range []string{
		"only the list below: 192.0.2.10, 192.0.2.11 (decoded from 88 bytes of IPSECLIST; hex in Appendix D, D1)",
		`R setting object="SmtpSvc/1" name="RelayIpList"`,
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	// The appendix holds the hex whole (wrapped lines joined).
	joined := strings.NewReplacer("\n", "", " ", "", "»", "", "¶", "").Replace(app)
	if !strings.Contains(joined, demoRelayIPList) {
		t.Error("Appendix D lacks the RelayIpList hex")
	}
}

// plainOf renders nothing: it returns the plain-words summary of b.
func plainOf(t *testing.T, b *evidence.Bundle, tx texts) string {
	t.Helper()
	m, err := buildModel(b)
	if err != nil {
		t.Fatal(err)
	}
	return newRenderer(m, tx, Options{}, nil).plainSummary()
}

// TestPlainSummary: the executive summary's plain paragraph says what was
// wrong, what was changed and the proof, from the evidence: change the
// evidence and the paragraph changes with it.
func TestPlainSummary(t *testing.T) {
	tx := defaultTexts()
	b := fixtureBundle()
	got := plainOf(t, b, tx)
	re2 := b.Audits[1].Result.Targets[0].Endpoints[0]
	for _, want := range []string{
		// What was wrong, and why.
		"The mail server at mx1.example.com 192.0.2.10:25 accepted mail from an outside sender for an outside recipient (R1 outside sender to outside recipient; A41b relay after AUTH LOGIN with a made-up account)",
		"The cause, read from mx1.example.com over WinRM: Relay allowed for every host.",
		"The cause, read from mx2.example.com over WinRM: Anonymous users may relay.",
		// What was changed, by whom, when, under which ticket.
		fmt.Sprintf(`At %s, alice changed RelayIpList of SmtpSvc/1 from "all except: (empty)" to "only: 127.0.0.1, 10.1.2.3" (change RL-CHG-0001, ticket CHG-4711).`, utc(b.Changes[0].End)),
		// The proof.
		fmt.Sprintf("The proof: re-test run 2, from consultant-laptop (198.51.100.200, 2001:db8:ffff::200) at %s, tried the same relay attempts again and the server refused them.", utc(re2.Start)),
		"1 relay setting(s) that allow more than they should",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plain summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("not one paragraph:\n%s", got)
	}

	// Still open on re-test, with the re-test's reason.
	b = fixtureBundle()
	ep := &b.Audits[1].Result.Targets[0].Endpoints[0]
	ep.Verdict, ep.Reason = audit.VerdictOpen, "1 test(s) relayed: R1"
	if got := plainOf(t, b, tx); !strings.Contains(got, "found it still relaying (1 test(s) relayed: R1): the problem is not fixed.") {
		t.Errorf("open re-test:\n%s", got)
	}
	// Many triggering tests: plain words name a few, the finding the rest.
	b = fixtureBundle()
	ep = &b.Audits[0].Result.Targets[0].Endpoints[0]
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("R9%d", i)
		ep.Tests = append(ep.Tests, audit.TestResult{ID: id, Title: "extra form"})
		ep.Triggers = append(ep.Triggers, id)
	}
	if got := plainOf(t, b, tx); !strings.Contains(got, "; and 4 more, listed in the finding)") || strings.Contains(got, "R94") {
		t.Errorf("many triggers:\n%s", got)
	}
	// Nothing changed, nothing re-tested.
	b = fixtureBundle()
	b.Changes, b.Audits = nil, b.Audits[:1]
	if got := plainOf(t, b, tx); strings.Count(got, "Nothing was changed on it.") != 2 || strings.Count(got, "It was not re-tested, so the fix is not proven.") != 2 {
		t.Errorf("no change, no re-test:\n%s", got)
	}
	// No relay found.
	b = fixtureBundle()
	for ti := range b.Audits[0].Result.Targets {
		for ei := range b.Audits[0].Result.Targets[ti].Endpoints {
			if e := &b.Audits[0].Result.Targets[ti].Endpoints[ei]; e.Verdict == audit.VerdictOpen {
				e.Verdict = audit.VerdictClosed
			}
		}
	}
	got = plainOf(t, b, tx)
	for _, want := range []string{"each of the 5 mail endpoint(s) tested; none of them relayed it", "should be tested again: flaky.example.org 203.0.113.5:25."} {
		if !strings.Contains(got, want) {
			t.Errorf("no relay: lacks %q:\n%s", want, got)
		}
	}
	// The sentences come from the texts, so they can be translated.
	de, err := parseTexts("de", "[summary.plain.cause]\nUrsache, über WinRM von {host} gelesen: {cause}.\n")
	if err != nil {
		t.Fatal(err)
	}
	tx["summary.plain.cause"] = de["summary.plain.cause"]
	if got := plainOf(t, fixtureBundle(), tx); !strings.Contains(got, "Ursache, über WinRM von mx1.example.com gelesen: Relay allowed for every host.") {
		t.Errorf("translated text not used:\n%s", got)
	}
}

// TestPipelinedRepliesLabelled: in the PDF, each reply of a pipelined
// batch carries the ID of the test it answers.
func TestPipelinedRepliesLabelled(t *testing.T) {
	needTool(t, "pdftotext")
	b := fixtureBundle()
	ep := &b.Audits[0].Result.Targets[0].Endpoints[0] // mx1, tests C1 R1 R7 A41b
	start := ep.Transcripts[0].Start
	var lines []audit.TranscriptLine
	add := func(dir, text string) {
		lines = append(lines, audit.TranscriptLine{T: start.Add(time.Duration(len(lines)) * time.Millisecond), Dir: dir, Text: text})
	}
	add("S", "220 mx1.example.com ESMTP")
	add("C", "EHLO probe.relaylock.test")
	add("S", "250-mx1.example.com")
	add("S", "250 PIPELINING")
	for _, tr := range ep.Tests[:3] {
		add("C", "MAIL FROM:"+tr.MailFrom)
		add("C", "RCPT TO:"+tr.RcptTo)
		add("C", "RSET")
	}
	for _, rcpt := range []string{"250 2.1.5 pipelined-C1", "250 2.1.5 pipelined-R1", "550 5.7.1 pipelined-R7"} {
		add("S", "250 2.1.0 Sender OK")
		add("S", rcpt)
		add("S", "250 2.0.0 Reset OK")
	}
	ep.Transcripts[0].Lines = lines
	data, _ := renderFixture(t, b, Options{})
	text := run(t, "pdftotext", "-layout", writeTemp(t, data), "-")
	for _, want := range []string{`C1\s+S:\s+250 2\.1\.5 pipelined-C1`, `R1\s+S:\s+250 2\.1\.5 pipelined-R1`, `R7\s+S:\s+550 5\.7\.1 pipelined-R7`} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("no line matching %s", want)
		}
	}
}
