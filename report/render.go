package report

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

// Page geometry (A4, mm) and type sizes (pt).
const (
	pageW, pageH = 210.0, 297.0
	marginL      = 18.0
	marginR      = 18.0
	marginT      = 22.0
	marginB      = 20.0
	contentW     = pageW - marginL - marginR
	bodySize     = 9.0
	smallSize    = 7.5
	monoSize     = 7.0
	lineH        = 4.4
	monoLineH    = 3.3
)

// pagesAlias stands for the page count until the document closes. It
// holds control characters, which clean() always escapes, so no text from
// the evidence can contain it.
const pagesAlias = "\x01NB\x01"

type rgb struct{ r, g, b int }

var (
	colInk     = rgb{33, 37, 41}
	colMuted   = rgb{108, 117, 125}
	colRule    = rgb{206, 212, 218}
	colHeadBg  = rgb{233, 236, 239}
	colAccent  = rgb{31, 78, 121}
	colOpen    = rgb{192, 36, 37}
	colClosed  = rgb{35, 134, 54}
	colUnknown = rgb{230, 160, 20}
	colNone    = rgb{206, 212, 218}
	colWhite   = rgb{255, 255, 255}
)

// statusColors gives the fill and text colour of a status word.
func statusColors(s string) (fill, text rgb) {
	switch s {
	case stOpen:
		return colOpen, colWhite
	case stClosed:
		return colClosed, colWhite
	case stInconclusive:
		return colUnknown, colInk
	default:
		return colNone, colInk
	}
}

type tocEntry struct {
	id    string
	title string
	level int
	link  int
	page  int
}

type renderer struct {
	d       *doc
	t       texts
	m       *model
	opts    Options
	logo    []byte
	toc     []*tocEntry
	tocByID map[string]*tocEntry
	outline []outlineEntry
	title   string
	client  string // the engagement's, or Options.Client when it has none
	prov    Provenance
	header  string
	inBody  bool

	labels map[string]string // English label → translation ([labels.rows])

	raws     []rawItem // Appendix D, in order of first reference
	rawByKey map[string]string

	curColor, curFill, curDraw rgb
	colorSet, fillSet, drawSet bool
}

func newRenderer(m *model, t texts, opts Options, logo []byte) *renderer {
	b := m.b
	client := b.Engagement.Client
	if opts.Client != "" {
		client = opts.Client
	}
	title := t.get("title")
	d := newDoc(docMeta{
		Title:    title + " " + b.ID,
		Author:   b.Engagement.Operator,
		Subject:  client,
		Keywords: "SMTP open relay " + b.ID + " " + m.digest,
		Creator:  "relaylock " + b.Tool.Version + " (" + b.Tool.Commit + ")",
		Date:     m.time,
	})
	r := &renderer{d: d, t: t, m: m, opts: opts, logo: logo, tocByID: map[string]*tocEntry{}, title: title, client: client, rawByKey: map[string]string{}}
	r.header = t.get("header", "title", title, "report_id", b.ID)
	r.labels = t.labels()
	return r
}

// l translates a label (a table heading, a field name, a short phrase)
// through the [labels.rows] text; a label without a translation stays as
// it is. Labels may be fmt formats: translations keep their verbs.
func (r *renderer) l(s string) string {
	if fixedWords[s] {
		return s // a value of the evidence (loadTexts refuses a translation)
	}
	if v, ok := r.labels[s]; ok && v != "" {
		return v
	}
	return s
}

// ls translates a list of labels.
func (r *renderer) ls(s ...string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = r.l(x)
	}
	return out
}

// color, fill and draw skip calls that change nothing: gofpdf formats
// the colour on every call, which dominated the time of large reports.
// gofpdf keeps colours across pages, so the cache stays true.
func (r *renderer) color(c rgb) {
	if !r.colorSet || r.curColor != c {
		r.d.textColor(c.r, c.g, c.b)
		r.curColor, r.colorSet = c, true
	}
}

func (r *renderer) fill(c rgb) {
	if !r.fillSet || r.curFill != c {
		r.d.fillColor(c.r, c.g, c.b)
		r.curFill, r.fillSet = c, true
	}
}

func (r *renderer) draw(c rgb) {
	if !r.drawSet || r.curDraw != c {
		r.d.drawColor(c.r, c.g, c.b)
		r.curDraw, r.drawSet = c, true
	}
}
func (r *renderer) body()           { r.d.font(fontSans, "", bodySize); r.color(colInk) }
func (r *renderer) bottom() float64 { return pageH - marginB }

// all lays out the whole report.
func (r *renderer) all() {
	d := r.d
	d.setMargins(marginL, marginT, marginR)
	d.setAutoPageBreak(true, marginB)
	d.aliasPages(pagesAlias)
	d.setHeader(r.pageHeader)
	d.setFooter(r.pageFooter)

	r.planTOC()
	r.cover()
	tocStart := d.pageNo() + 1
	for range r.tocPages() {
		d.addPage()
	}
	r.inBody = true
	r.control()
	r.summary()
	r.scope()
	r.method()
	r.inventory()
	r.findingsSummary()
	r.details()
	r.changeLog()
	r.verification()
	r.compliance()
	r.transcripts()
	r.configs()
	r.manifest()
	r.rawValues()
	last := d.pageNo()
	r.writeTOC(tocStart)
	d.setPage(last)
}

func (r *renderer) pageHeader() {
	d := r.d
	if d.pageNo() == 1 {
		return
	}
	d.font(fontSans, "", smallSize)
	r.color(colMuted)
	d.setXY(marginL, 10)
	d.cell(contentW, 4, r.header, "", 0, "L", false, 0)
	r.draw(colRule)
	d.lineWidth(0.2)
	d.line(marginL, 15, pageW-marginR, 15)
	d.setXY(marginL, marginT)
	r.body()
}

func (r *renderer) pageFooter() {
	d := r.d
	r.modifiedBanner()
	d.font(fontSans, "", smallSize)
	r.color(colMuted)
	d.setXY(marginL, pageH-12)
	// The page alias must reach gofpdf unescaped: clean the template text
	// around it only.
	text := r.t.get("footer", "page", fmt.Sprint(d.pageNo()))
	text = strings.Replace(text, "{pages}", pagesAlias, 1)
	d.cellRaw(contentW/2, 4, text)
	d.cell(contentW/2, 4, r.m.b.ID+" · "+r.m.digest[:16], "", 0, "R", false, 0)
	r.body()
}

// planTOC lists the sections (and findings) before rendering, so the
// contents pages can be reserved.
func (r *renderer) planTOC() {
	add := func(id, key string, level int, title string) {
		if key != "" {
			title = r.t.get(key)
		}
		e := &tocEntry{id: id, title: title, level: level, link: r.d.addLink()}
		r.toc = append(r.toc, e)
		r.tocByID[id] = e
	}
	add("control", "section.control", 0, "")
	add("summary", "section.summary", 0, "")
	add("scope", "section.scope", 0, "")
	add("method", "section.method", 0, "")
	add("inventory", "section.inventory", 0, "")
	add("findings", "section.findings", 0, "")
	add("details", "section.details", 0, "")
	for _, f := range r.m.findings {
		add("f:"+f.ID, "", 1, f.ID+"  "+r.findingTitle(f))
	}
	add("changes", "section.changes", 0, "")
	add("verification", "section.verification", 0, "")
	add("compliance", "section.compliance", 0, "")
	add("transcripts", "section.appendix.transcripts", 0, "")
	add("config", "section.appendix.config", 0, "")
	add("manifest", "section.appendix.manifest", 0, "")
	add("raw", "section.appendix.raw", 0, "")
}

const tocLineH = 5.5

func (r *renderer) tocPerPage() int { return int((r.bottom() - marginT - 14) / tocLineH) }

func (r *renderer) tocPages() []int {
	n := (len(r.toc) + r.tocPerPage() - 1) / r.tocPerPage()
	return make([]int, max(n, 1))
}

// writeTOC goes back to the reserved pages and fills in the contents with
// the pages the sections landed on.
func (r *renderer) writeTOC(start int) {
	d := r.d
	per := r.tocPerPage()
	for i, e := range r.toc {
		if i%per == 0 {
			d.setPage(start + i/per)
			d.setXY(marginL, marginT)
			if i == 0 {
				d.forceFont(fontSans, "B", 16)
				r.color(colAccent)
				d.cell(contentW, 9, r.t.get("toc.title"), "", 1, "L", false, 0)
				d.ln(5)
			}
			d.forceFont(fontSans, "", bodySize)
			r.color(colInk)
		}
		indent := float64(e.level) * 6
		style := "B"
		if e.level > 0 {
			style = ""
		}
		d.font(fontSans, style, bodySize)
		d.setX(marginL + indent)
		title := e.title
		tw := contentW - indent - 14
		if lines := d.split(title, tw); len(lines) > 1 {
			title = strings.TrimRight(lines[0], " ") + " …"
		}
		d.cell(tw, tocLineH, title, "", 0, "L", false, e.link)
		d.cell(14, tocLineH, fmt.Sprint(e.page), "", 1, "R", false, e.link)
	}
}

// section starts a top-level section on a new page.
func (r *renderer) section(id string) {
	e := r.tocByID[id]
	r.d.addPage()
	r.mark(e, 0)
	r.d.font(fontSans, "B", 16)
	r.color(colAccent)
	r.d.cell(contentW, 9, e.title, "", 1, "L", false, 0)
	r.d.ln(2)
	r.body()
}

// mark records a TOC entry's page, link target and bookmark here.
func (r *renderer) mark(e *tocEntry, level int) {
	e.page = r.d.pageNo()
	r.d.setLink(e.link, r.d.y(), e.page)
	r.bookmark(e.title, level)
}

func (r *renderer) bookmark(title string, level int) {
	title = clean(title)
	r.d.bookmark(title, level)
	r.outline = append(r.outline, outlineEntry{Title: title, Level: level, Page: r.d.pageNo()})
}

// need starts a new page unless h mm fit on this one.
func (r *renderer) need(h float64) {
	if r.d.y()+h > r.bottom() {
		r.d.addPage()
	}
}

// keepHeading is the room a heading needs below it for what follows
// (a table's head and first row, or a few lines), so that a heading
// never ends a page.
const keepHeading = 22.0

func (r *renderer) heading(s string) {
	r.need(9 + keepHeading)
	r.d.ln(2)
	r.d.font(fontSans, "B", 11)
	r.color(colAccent)
	r.d.multiCell(contentW, 6, clean(s), "", "L", false)
	r.d.ln(1)
	r.body()
}

func (r *renderer) subheading(s string) {
	r.need(6 + keepHeading)
	r.d.ln(1)
	r.d.font(fontSans, "B", bodySize+0.5)
	r.color(colInk)
	r.d.multiCell(contentW, 5, clean(s), "", "L", false)
	r.body()
}

// para writes prose (already cleaned: texts.get or cleanText).
func (r *renderer) para(s string) {
	r.body()
	for p := range strings.SplitSeq(s, "\n\n") {
		r.d.multiCell(contentW, lineH, p, "", "L", false)
		r.d.ln(1.5)
	}
}

func (r *renderer) muted(s string) {
	r.d.font(fontSans, "I", smallSize+0.5)
	r.color(colMuted)
	r.d.multiCell(contentW, 3.8, s, "", "L", false)
	r.body()
}

// cellSpec is one table cell.
type cellSpec struct {
	text   string
	status bool // draw as a coloured status cell
	mono   bool
	bold   bool
}

// txt and mono clean a cell's text; a line feed starts a new line in the
// cell (visible as such), every other control character is escaped.
func txt(s string) cellSpec  { return cellSpec{text: cleanText(s)} }
func mono(s string) cellSpec { return cellSpec{text: cleanText(s), mono: true} }
func stat(s string) cellSpec { return cellSpec{text: s, status: true} }

// table draws rows with wrapped cells, breaking pages between lines (a
// cell taller than a page continues on the next) and repeating the
// header row after each break.
func (r *renderer) table(widths []float64, head []string, rows [][]cellSpec) {
	d := r.d
	drawHead := func() {
		if head == nil {
			return
		}
		d.font(fontSans, "B", smallSize+0.5)
		r.fill(colHeadBg)
		r.color(colInk)
		hl := make([][]string, len(head))
		n := 1
		for i, h := range head {
			hl[i] = d.split(h, widths[i])
			n = max(n, len(hl[i]))
		}
		for li := range n {
			d.setX(marginL)
			for i := range head {
				s := ""
				if li < len(hl[i]) {
					s = hl[i][li]
				}
				d.cell(widths[i], 4, s, "", 0, "L", true, 0)
			}
			d.ln(4)
		}
		r.body()
	}
	const lh = 4.0
	// Wrap every row first: the page breaks depend on the rows to come.
	cells := make([][][]string, len(rows))
	heights := make([]float64, len(rows)) // as drawn, with the padding
	for ri, row := range rows {
		lines := make([][]string, len(row))
		n := 1
		for i, c := range row {
			r.cellFont(c)
			if c.status {
				lines[i] = []string{c.text}
			} else {
				lines[i] = d.split(c.text, widths[i])
			}
			n = max(n, len(lines[i]))
		}
		cells[ri] = lines
		heights[ri] = float64(n)*lh + 1.2
	}
	r.need(14)
	drawHead()
	for ri, row := range rows {
		lines := cells[ri]
		n := len(lines[0])
		for _, l := range lines {
			n = max(n, len(l))
		}
		if n <= 12 {
			r.need(heights[ri]) // the height breakForTail reckons with
		}
		if r.breakForTail(heights, ri) {
			d.addPage()
		}
		if d.y() < marginT+1 && head != nil { // new page from need()
			drawHead()
		}
		d.ln(0.6)
		// A row taller than the page left breaks inside; it breaks early
		// enough that at least minTail (of it and the rows after it)
		// goes to the next page.
		rest := float64(n)*lh + 0.6
		for _, h := range heights[ri+1:] {
			rest += h
		}
		shortSpill := func() bool { return rest > r.bottom()-d.y() && rest-(r.bottom()-d.y()) < minTail }
		short := shortSpill()
		for li := range n {
			early := short && li > 0 && rest >= minTail && rest-lh < minTail
			if early || d.y()+lh > r.bottom() {
				d.addPage()
				drawHead()
				short = shortSpill() // a row may span several pages
			}
			rest -= lh
			d.setX(marginL)
			for i, c := range row {
				s := ""
				if li < len(lines[i]) {
					s = lines[i][li]
				}
				r.cellFont(c)
				if c.status {
					fill, ink := statusColors(c.text)
					r.fill(fill)
					r.color(ink)
					d.font(fontSans, "B", smallSize)
					if li == 0 {
						d.cell(widths[i], lh, r.l(s), "", 0, "C", true, 0)
					} else {
						d.cell(widths[i], lh, "", "", 0, "C", true, 0)
					}
					r.color(colInk)
					continue
				}
				d.cell(widths[i], lh, s, "", 0, "L", false, 0)
			}
			d.ln(lh)
		}
		d.ln(0.6)
		r.draw(colRule)
		d.lineWidth(0.15)
		d.line(marginL, d.y(), marginL+sum(widths), d.y())
	}
	r.body()
	d.ln(3)
}

// minTail is the least a table or a block of lines carries onto a new
// page (mm): a last row or two alone on a page reads as a page left
// nearly empty by mistake, and is cut off from the rows it belongs with.
const minTail = 50.0

// breakForTail reports whether a table should break before row k so that
// the rows that spill onto the next page are not a short tail: the
// break moves up to the last row from which at least minTail remain. It
// never breaks before the first row on a page, nor in a table with a row
// taller than half a page (those rows break inside).
func (r *renderer) breakForTail(heights []float64, k int) bool {
	y := r.d.y()
	if y < marginT+12 {
		return false
	}
	body := r.bottom() - marginT
	for _, h := range heights[k:] {
		if h > body/2 {
			return false
		}
	}
	j := k // the first row that does not fit on this page
	for ; j < len(heights) && y+heights[j] <= r.bottom(); j++ {
		y += heights[j]
	}
	if j == len(heights) {
		return false // the rest fits
	}
	tail := 0.0
	for _, h := range heights[j:] {
		tail += h
	}
	if tail >= minTail {
		return false
	}
	// The last row b in [k, j] from which minTail remain, if any: rows
	// from b go to the next page. Breaking at k when none has (the whole
	// rest is short) keeps the rest together.
	for b := j; b > k; b-- {
		tail += heights[b-1]
		if tail >= minTail {
			return b-1 == k
		}
	}
	return true
}

func (r *renderer) cellFont(c cellSpec) {
	switch {
	case c.mono:
		r.d.font(fontMono, "", monoSize)
	case c.bold:
		r.d.font(fontSans, "B", smallSize+0.5)
	default:
		r.d.font(fontSans, "", smallSize+0.5)
	}
	r.color(colInk)
}

func sum(ws []float64) float64 {
	s := 0.0
	for _, w := range ws {
		s += w
	}
	return s
}

// kv draws a two-column label/value table.
func (r *renderer) kv(pairs ...[2]string) {
	rows := make([][]cellSpec, 0, len(pairs))
	for _, p := range pairs {
		rows = append(rows, []cellSpec{{text: cleanText(p[0]), bold: true}, txt(p[1])})
	}
	r.table([]float64{42, contentW - 42}, nil, rows)
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (r *renderer) withOffset(t time.Time) string {
	s := utc(t)
	if r.m.offset != "" && !t.IsZero() {
		s += " (operator's local offset " + r.m.offset + ")"
	}
	return s
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// ---- Cover and front matter ----

func (r *renderer) cover() {
	d, b, m := r.d, r.m.b, r.m
	d.addPage()
	r.bookmark(r.title, 0)
	// Accent band.
	r.fill(colAccent)
	d.rect(0, 0, pageW, 8, "F")
	y := 30.0
	if len(r.logo) > 0 {
		if err := d.image("logo", bytes.NewReader(r.logo), marginL, 18, 0, 16); err == nil {
			y = 44
		}
	}
	d.setXY(marginL, y)
	d.font(fontSans, "B", 24)
	r.color(colAccent)
	d.multiCell(contentW, 10, r.title, "", "L", false)
	d.ln(2)
	d.font(fontSans, "", 12)
	r.color(colMuted)
	d.multiCell(contentW, 6, r.t.get("subtitle"), "", "L", false)
	d.ln(8)
	d.font(fontSans, "", 10)
	r.color(colMuted)
	d.cell(contentW, 5, r.t.get("cover.prepared_for"), "", 1, "L", false, 0)
	d.font(fontSans, "B", 16)
	r.color(colInk)
	d.multiCell(contentW, 8, clean(orDash(r.client)), "", "L", false)
	d.ln(8)

	// Verdict box.
	found, fixed, after, unverified := m.counts()
	untested := m.untested()
	var verdict string
	switch {
	case found == 0 && untested > 0:
		verdict = r.t.get("cover.verdict.none_unverified", "endpoints", fmt.Sprint(len(m.rows)), "unverified", fmt.Sprint(untested))
	case found == 0:
		verdict = r.t.get("cover.verdict.none", "endpoints", fmt.Sprint(len(m.rows)))
	case !m.retested:
		verdict = r.t.get("cover.verdict.no_retest", "found", r.foundText(found), "remediated", fmt.Sprint(fixed))
	case unverified > 0:
		verdict = r.t.get("cover.verdict.unverified", "found", r.foundText(found), "remediated", fmt.Sprint(fixed), "open_after", fmt.Sprint(after), "unverified", fmt.Sprint(unverified))
	default:
		verdict = r.t.get("cover.verdict", "found", r.foundText(found), "remediated", fmt.Sprint(fixed), "open_after", fmt.Sprint(after))
	}
	if found > 0 && untested > 0 {
		verdict += " " + r.t.get("cover.verdict.untested", "n", fmt.Sprint(untested))
	}
	c := verdictColor(found, fixed, after, unverified, untested, m.retested)
	d.font(fontSans, "B", 13)
	lines := d.split(verdict, contentW-12)
	h := float64(len(lines))*7 + 8
	y = d.y()
	r.fill(c)
	d.rect(marginL, y, 3, h, "F")
	r.draw(colRule)
	d.lineWidth(0.3)
	d.rect(marginL, y, contentW, h, "D")
	d.setXY(marginL+8, y+4)
	r.color(colInk)
	d.multiCell(contentW-12, 7, verdict, "", "L", false)
	d.setXY(marginL, y+h+8)

	r.body()
	pairs := [][2]string{
		{r.l("Report ID"), b.ID},
		{r.l("Generated (UTC)"), r.withOffset(m.time)},
		{r.l("Authorization"), orDash(b.Engagement.Authorization)},
		{r.l("Operator"), orDash(b.Engagement.Operator)},
		{r.l("Tool"), toolLine(b.Tool.Name, b.Tool.Version, b.Tool.Commit)},
	}
	if r.opts.SigningKey != "" {
		pairs = append(pairs, [2]string{r.l("Signing key"), r.opts.SigningKey})
	}
	r.kv(pairs...)
	d.ln(2)
	d.font(fontSans, "B", bodySize)
	d.cell(contentW, 5, r.t.get("cover.evidence"), "", 1, "L", false, 0)
	d.font(fontMono, "", 9)
	d.cell(contentW, 5, m.digest, "", 1, "L", false, 0)
	d.ln(4)
	r.muted(r.t.get("cover.note"))
	r.provenance()
}

// provenance names, on the cover, what the rendering used that the
// sealed evidence does not hold. Its words are fixed, not texts: a
// template must not be able to hide that it was used.
func (r *renderer) provenance() {
	var s []string
	if r.prov.TemplateSHA256 != "" {
		s = append(s, "Rendered with custom texts sha256 "+r.prov.TemplateSHA256+" (report --template): the wording is not part of the sealed evidence; verdicts and statuses are.")
	}
	if r.prov.Client != "" {
		s = append(s, "The client name was given when rendering (report --client); the sealed evidence names no client.")
	}
	if len(s) == 0 {
		return
	}
	s = append(s, "This is recorded with the report in the evidence (artifacts).")
	r.d.ln(2)
	r.muted(cleanText(strings.Join(s, " ")))
}

// verdictColor is the cover verdict's colour: green only when every relay
// found was re-tested closed and every other endpoint was decided, amber
// when the only shortfall is tests that prove nothing (relays whose re-test
// could not decide, endpoints that could not be tested), red otherwise.
func verdictColor(found, fixed, after, unverified, untested int, retested bool) rgb {
	switch {
	case after > 0 || (found > 0 && !retested) || fixed+unverified < found:
		return colOpen
	case unverified > 0 || untested > 0:
		return colUnknown
	}
	return colClosed
}

// foundText is "1 open relay found" or "3 open relays found".
func (r *renderer) foundText(n int) string {
	if n == 1 {
		return r.t.get("cover.found.one", "n", "1")
	}
	return r.t.get("cover.found.many", "n", fmt.Sprint(n))
}

func toolLine(name, version, commit string) string {
	if name == "" {
		name = "relaylock"
	}
	return fmt.Sprintf("%s %s (commit %s)", name, orDash(version), orDash(commit))
}

func (r *renderer) control() {
	b, m := r.m.b, r.m
	r.section("control")
	r.para(r.t.get("section.control.intro"))
	pairs := [][2]string{
		{r.l("Report ID"), b.ID},
		{r.l("Client"), orDash(r.client)},
		{r.l("Authorization"), orDash(b.Engagement.Authorization)},
		{r.l("Change ticket"), orDash(b.Engagement.Ticket)},
		{r.l("Prepared by"), orDash(b.Engagement.Operator)},
		{r.l("Evidence started"), utc(b.Created)},
		{r.l("Report date"), r.withOffset(m.time)},
		{r.l("Tool"), toolLine(b.Tool.Name, b.Tool.Version, b.Tool.Commit)},
		{r.l("Tool build"), fmt.Sprintf("%s %s/%s", orDash(b.Tool.GoVersion), orDash(b.Tool.OS), orDash(b.Tool.Arch))},
		{r.l("Evidence digest"), m.digest},
	}
	if r.opts.EvidenceSHA256 != "" {
		pairs = append(pairs, [2]string{r.l("Evidence file SHA-256 when rendered"), r.opts.EvidenceSHA256})
	}
	pairs = append(pairs,
		[2]string{r.l("Classification"), r.t.get("control.classification")},
		[2]string{r.l("Distribution"), r.t.get("control.distribution")})
	r.kv(pairs...)
}

// ---- Executive summary ----

func (r *renderer) summary() {
	m := r.m
	r.section("summary")
	// The summary opens with the story in plain words, then the
	// picture: every endpoint before and after, in colour and in words.
	r.heading(r.t.get("summary.plain.title"))
	r.para(r.plainSummary())
	r.heading(r.t.get("summary.grid.title"))
	r.legend()
	rows := make([][]cellSpec, 0, len(m.rows))
	for _, rw := range m.rows {
		rows = append(rows, []cellSpec{txt(rw.Key.String()), stat(rw.beforeStatus()), stat(rw.afterStatus())})
	}
	if len(rows) == 0 {
		r.para(r.t.get("summary.none"))
	} else {
		r.table([]float64{contentW - 60, 30, 30}, r.ls("Endpoint", "Before", "After"), rows)
	}
	r.para(r.t.get("summary.intro"))

	r.heading(r.t.get("summary.counts.title"))
	if len(m.findings) == 0 {
		r.para(r.t.get("summary.none"))
		return
	}
	var counts [4][5]int
	for _, f := range m.findings {
		si := 3
		for i, s := range severities {
			if s == f.Severity {
				si = i
			}
		}
		counts[si][0]++
		counts[si][statusGroup(f.StatusKey)]++
	}
	var trows [][]cellSpec
	for i, s := range severities {
		row := []cellSpec{{text: s, bold: true}}
		for _, n := range counts[i] {
			row = append(row, txt(fmt.Sprint(n)))
		}
		trows = append(trows, row)
	}
	r.table([]float64{30, 28, 28, 30, 30, 28}, r.ls("Severity", "Found", "Open", "Fixed, verified", "Fixed, not verified", "Inconclusive"), trows)
}

// legend draws the colour key with the words it stands for.
func (r *renderer) legend() {
	d := r.d
	x := marginL
	y := d.y()
	for _, s := range []string{stOpen, stClosed, stInconclusive, stNotRetested} {
		fill, ink := statusColors(s)
		r.fill(fill)
		r.color(ink)
		d.font(fontSans, "B", smallSize)
		d.setXY(x, y)
		w := d.width(r.l(s)) + 6
		d.cell(w, 5, r.l(s), "", 0, "C", true, 0)
		x += w + 3
	}
	d.setXY(marginL, y+7)
	r.muted(r.t.get("summary.legend"))
	d.ln(2)
}

// ---- Scope, method, inventory ----

func (r *renderer) scope() {
	b, m := r.m.b, r.m
	r.section("scope")
	r.para(r.t.get("scope.intro"))
	r.kv(
		[2]string{r.l("Client"), orDash(r.client)},
		[2]string{r.l("Authorization"), orDash(b.Engagement.Authorization)},
		[2]string{r.l("Operator"), orDash(b.Engagement.Operator)},
		[2]string{r.l("Change ticket"), orDash(b.Engagement.Ticket)},
		[2]string{r.l("Targets in scope"), orDash(strings.Join(b.Engagement.Scope, ", "))},
	)
	if m.first < 0 {
		return
	}
	res := b.Audits[m.first].Result
	r.heading(r.l("Targets and mail exchangers"))
	var rows [][]cellSpec
	for _, t := range res.Targets {
		var mx []string
		for _, h := range t.MX {
			s := fmt.Sprintf("%s (pref %d): %s", h.Host, h.Preference, strings.Join(h.Addresses, ", "))
			if h.Implicit {
				s += " [implicit MX]"
			}
			if h.Error != "" {
				s += " error: " + h.Error
			}
			mx = append(mx, s)
		}
		if t.NullMX {
			mx = append(mx, "null MX (RFC 7505): accepts no mail")
		}
		rows = append(rows, []cellSpec{txt(t.Target), txt(t.Kind), stat(verdictWord(t.Verdict)), txt(strings.Join(mx, "\n") + reason(t.Reason))})
	}
	r.table([]float64{36, 16, 26, contentW - 78}, r.ls("Target", "Kind", "Verdict", "Mail exchangers and addresses"), rows)

	r.heading(r.l("DNS answers"))
	rows = nil
	for _, t := range res.Targets {
		for _, q := range t.DNS {
			// Tabs separate the fields of an RR in presentation format.
			ans := strings.ReplaceAll(strings.Join(q.Answers, "\n"), "\t", " ")
			if q.Error != "" {
				ans += reason("error: " + q.Error)
			}
			rows = append(rows, []cellSpec{txt(utc(q.Time)), txt(q.Server + " " + q.Transport), txt(q.Name + " " + q.Type), txt(orDash(q.Rcode)), mono(orDash(ans))})
		}
	}
	if len(rows) == 0 {
		r.para(clean(r.l("No DNS queries were recorded (address targets).")))
		return
	}
	r.table([]float64{26, 30, 34, 20, contentW - 110}, r.ls("Time (UTC)", "Resolver", "Question", "Rcode", "Answers"), rows)
}

// reason puts s on a line of its own below a cell's text (for cells,
// which keep line feeds).
func reason(s string) string {
	if s == "" {
		return ""
	}
	return "\n" + s
}

// inlineReason puts s after a colon on the same line, its own line
// breaks turned into "; " (for one-line texts, where clean would show a
// line feed as a literal \n).
func inlineReason(s string) string {
	var parts []string
	for _, l := range splitLines(s) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

func (r *renderer) method() {
	b := r.m.b
	r.section("method")
	r.para(r.t.get("method.intro"))
	r.heading(r.t.get("method.matrix.title"))
	seen := map[string]bool{}
	var rows [][]cellSpec
	for _, a := range b.Audits {
		if a.Result == nil {
			continue
		}
		for _, t := range a.Result.Targets {
			for _, ep := range t.Endpoints {
				for _, tr := range ep.Tests {
					if seen[tr.ID] {
						continue
					}
					seen[tr.ID] = true
					rows = append(rows, []cellSpec{{text: clean(tr.ID), bold: true}, txt(tr.Kind), txt(tr.Title), mono(tr.MailFrom), mono(tr.RcptTo)})
				}
			}
		}
	}
	if len(rows) == 0 {
		r.para(clean(r.l("No test was run.")))
	} else {
		r.table([]float64{12, 18, 54, 45, 45}, r.ls("Test", "Kind", "Title", "MAIL FROM", "RCPT TO"), rows)
	}
	r.heading(r.t.get("method.vantage.title"))
	rows = nil
	for i, a := range b.Audits {
		if a.Result == nil {
			continue
		}
		v, o := a.Result.Vantage, a.Result.Options
		src := strings.Join(v.SourceAddrs, ", ")
		if v.Hostname != "" {
			src = v.Hostname + ": " + orDash(src)
		}
		opts := fmt.Sprintf("depth %s, ports %s, probe domain %s, HELO %s", orDash(o.Depth), ints(o.Ports), orDash(o.ProbeDomain), orDash(o.HeloName))
		if len(o.DNSServers) > 0 {
			opts += ", DNS " + strings.Join(o.DNSServers, " ")
		}
		rows = append(rows, []cellSpec{txt(fmt.Sprintf("%d %s", i+1, a.Purpose)), txt(utc(a.Result.Start) + "\n" + utc(a.Result.End)), txt(orDash(v.LocalOffset)), txt(orDash(src)), txt(opts)})
	}
	r.table([]float64{22, 34, 16, 46, contentW - 118}, r.ls("Run", "Start / end (UTC)", "Local offset", "Vantage: host and source addresses", "Settings"), rows)
}

func ints(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return orDash(strings.Join(s, " "))
}

func (r *renderer) inventory() {
	b, m := r.m.b, r.m
	r.section("inventory")
	r.para(r.t.get("inventory.intro"))
	r.heading(r.l("Mail endpoints"))
	var rows [][]cellSpec
	for _, rw := range m.rows {
		ep := rw.Before
		if ep == nil {
			ep = rw.After
		}
		tls := "—"
		if ti := ep.EP.TLSInfo; ti != nil {
			tls = ti.Version + " " + ti.CipherSuite
			if !ti.Verified && ti.VerifyError != "" {
				tls += "\ncertificate not verified: " + ti.VerifyError
			}
		}
		rows = append(rows, []cellSpec{txt(rw.Key.String()), mono(orDash(ep.EP.Banner)), txt(tls), txt(orDash(strings.Join(ep.EP.Extensions, " ")))})
	}
	r.table([]float64{44, 60, 34, contentW - 138}, r.ls("Endpoint", "Banner", "TLS", "EHLO extensions"), rows)
	if len(b.Inspections) == 0 {
		return
	}
	r.heading(r.l("Inspected Windows hosts"))
	rows = nil
	seen := map[string]bool{}
	for _, in := range b.Inspections {
		if seen[norm(in.Host)] {
			continue
		}
		seen[norm(in.Host)] = true
		hi := in.HostInfo
		ex := "—"
		if hi.ExchangeVersion != "" {
			ex = "Exchange " + hi.ExchangeVersion + " " + hi.ExchangeBuild + "\n" + strings.Join(hi.ExchangeRoles, ", ")
		}
		var svc []string
		for _, s := range hi.Services {
			if s.Present {
				svc = append(svc, s.Name+" "+s.State+" "+s.StartMode)
			}
		}
		rows = append(rows, []cellSpec{txt(in.Host + reason(hi.ComputerName)), txt(string(in.Platform)), txt(hi.OSCaption + " " + hi.OSVersion + "\nPowerShell " + hi.PSVersion), txt(ex), txt(orDash(strings.Join(svc, "\n")))})
	}
	r.table([]float64{36, 20, 44, 34, contentW - 134}, r.ls("Host", "Platform", "Operating system", "Exchange", "Services"), rows)
}

// ---- Findings ----

func (r *renderer) findingTitle(f *finding) string {
	if f.Kind == findingRelay {
		return r.t.get("finding.relay.title", "endpoint", f.Row.Key.String())
	}
	return clean(f.Title + " (" + f.Host + ")")
}

func (r *renderer) findingAsset(f *finding) string {
	if f.Kind == findingRelay {
		s := f.Row.Key.String()
		if f.Host != "" {
			s += "\nhost " + f.Host
		}
		return s
	}
	return f.Host + "\n" + f.Config.Object
}

func (r *renderer) status(key string) string { return r.t.get("status." + key) }

func (r *renderer) findingsSummary() {
	m := r.m
	r.section("findings")
	r.para(r.t.get("findings.intro"))
	if len(m.findings) == 0 {
		r.para(r.t.get("summary.none"))
		return
	}
	var rows [][]cellSpec
	for _, f := range m.findings {
		initial := stOpen
		if f.Kind == findingConfig {
			initial = stSet
		}
		rows = append(rows, []cellSpec{{text: f.ID, bold: true}, txt(r.findingAsset(f)), txt(r.findingTitle(f)), txt(f.Severity), stat(initial), txt(r.status(f.StatusKey)), txt(f.Controls)})
	}
	r.table([]float64{15, 36, 37, 14, 17, 27, 28}, r.ls("ID", "Asset", "Title", "Severity", "Initial", "Final status", "Controls"), rows)
}

// sectionHash returns the sealed hash of a named section, if sealed.
func (r *renderer) sectionHash(name string) string {
	for _, s := range r.m.hashes.Sections {
		if s.Name == name {
			return s.SHA256
		}
	}
	return "—"
}

func (r *renderer) inspIndex(in *remediate.Inspection) int {
	for i := range r.m.b.Inspections {
		if &r.m.b.Inspections[i] == in {
			return i
		}
	}
	return -1
}

func (r *renderer) changeIndex(c *remediate.ChangeRecord) int {
	for i := range r.m.b.Changes {
		if &r.m.b.Changes[i] == c {
			return i
		}
	}
	return -1
}

func (r *renderer) details() {
	m := r.m
	r.section("details")
	if len(m.findings) == 0 {
		r.para(r.t.get("summary.none"))
		return
	}
	for i, f := range m.findings {
		if i > 0 {
			r.need(60)
			r.d.ln(4)
		}
		e := r.tocByID["f:"+f.ID]
		r.need(30)
		r.mark(e, 1)
		r.d.font(fontSans, "B", 12)
		r.color(colAccent)
		r.d.multiCell(contentW, 6, e.title, "", "L", false)
		r.d.ln(1)
		r.body()
		r.findingBlock(f)
	}
}

func (r *renderer) findingBlock(f *finding) {
	b := r.m.b
	pairs := [][2]string{
		{r.l("Status"), r.status(f.StatusKey)},
	}
	if f.Kind == findingRelay {
		pairs = append(pairs, [2]string{r.l("Severity"), r.t.get("finding.relay.severity")})
	} else {
		pairs = append(pairs, [2]string{r.l("Severity"), f.Severity})
	}
	// Asset.
	asset := r.findingAsset(f)
	if f.Row != nil && f.Row.Before != nil {
		ep := f.Row.Before.EP
		asset += fmt.Sprintf("\nMX preference %d, target %s", ep.Preference, f.Row.Before.Target)
	}
	if f.Insp != nil {
		hi := f.Insp.HostInfo
		asset += "\nplatform " + string(f.Insp.Platform)
		if hi.ExchangeVersion != "" {
			asset += ", Exchange " + hi.ExchangeVersion + " " + strings.Join(hi.ExchangeRoles, "/")
		}
	}
	pairs = append(pairs, [2]string{r.l("Asset"), asset})

	var hashes []string
	if f.Kind == findingRelay && f.Row.Before != nil {
		ref := f.Row.Before
		run := b.Audits[ref.Run]
		var det []string
		det = append(det, fmt.Sprintf(r.l("External SMTP probe, run %d (%s), %s to %s"), ref.Run+1, run.Purpose, utc(ref.EP.Start), utc(ref.EP.End)))
		det = append(det, fmt.Sprintf(r.l("Vantage: %s"), orDash(strings.Join(run.Result.Vantage.SourceAddrs, ", "))))
		if ref.EP.Confirmation != "" {
			det = append(det, fmt.Sprintf(r.l("Confirmation: %s"), ref.EP.Confirmation))
		}
		for _, tr := range ref.EP.Tests {
			if !contains(ref.EP.Triggers, tr.ID) {
				continue
			}
			// The forms are recorded as sent, brackets and all.
			s := fmt.Sprintf("%s %s: ", tr.ID, tr.Title)
			if a := tr.AuthReply; a != nil {
				// The bogus login's answer is the heart of an A41 finding
				// (235: the server took a login that must fail).
				s += fmt.Sprintf("AUTH (%s) → %s; ", tr.Auth, replyLine(a))
			}
			s += fmt.Sprintf("MAIL FROM:%s RCPT TO:%s → %s", tr.MailFrom, tr.RcptTo, tr.Outcome)
			if tr.Reply != nil {
				s += " (" + replyLine(tr.Reply) + ")"
			}
			det = append(det, s)
		}
		det = append(det, fmt.Sprintf(r.l("Transcript: Appendix A, run %d, %s"), ref.Run+1, f.Row.Key.String()))
		pairs = append(pairs, [2]string{r.l("Detection"), strings.Join(det, "\n")})
		pairs = append(pairs, [2]string{r.l("Description"), r.t.get("finding.relay.description")})
		pairs = append(pairs, [2]string{r.l("Impact"), r.t.get("finding.relay.impact")})
		hashes = append(hashes, fmt.Sprintf("audits[%d] %s", ref.Run, r.sectionHash(fmt.Sprintf("audits[%d]", ref.Run))))
	} else if f.Config != nil {
		pairs = append(pairs, [2]string{r.l("Description"), r.t.get("finding.config.description")})
	}
	// Root cause from the inspection.
	if len(f.Causes) > 0 {
		var rc []string
		for _, c := range f.Causes {
			s := fmt.Sprintf("%s [%s, %s]: %s\n%s %s = %s", c.ID, c.Severity, explains(c.Explains), c.Title, c.Object, c.Setting, r.value(c.Object, c.Setting, c.Value))
			if c.Detail != "" {
				s += "\n" + c.Detail
			}
			rc = append(rc, s)
		}
		pairs = append(pairs, [2]string{r.l("Root cause"), strings.Join(rc, "\n\n")})
	} else if f.Kind == findingRelay {
		pairs = append(pairs, [2]string{r.l("Root cause"), r.l("Not determined: the host was not inspected over WinRM.")})
	}
	if f.Insp != nil {
		var ce []string
		ce = append(ce, fmt.Sprintf(r.l("Read %s over WinRM from %s"), utc(f.Insp.Time), f.Insp.Host))
		for _, run := range f.Insp.Runs {
			ce = append(ce, fmt.Sprintf("%s sha256 %s exit %d", run.Script, run.SHA256, run.ExitCode))
		}
		ce = append(ce, r.l("Settings and raw output: Appendix B"))
		pairs = append(pairs, [2]string{r.l("Configuration evidence"), strings.Join(ce, "\n")})
		if i := r.inspIndex(f.Insp); i >= 0 {
			hashes = append(hashes, fmt.Sprintf("inspections[%d] %s", i, r.sectionHash(fmt.Sprintf("inspections[%d]", i))))
		}
	}
	// Remediation.
	rem := ""
	if f.Kind == findingRelay {
		rem = r.t.get(relayRemediationKey(f.Insp))
	}
	for _, c := range f.Causes {
		if c.Remediation != "" {
			rem += reason(c.ID + ": " + r.fixText(f, c.Remediation))
		}
	}
	pairs = append(pairs, [2]string{r.l("Remediation"), strings.TrimSpace(rem)})
	// Change.
	if len(f.Changes) > 0 {
		var ch []string
		for _, c := range f.Changes {
			s := fmt.Sprintf(r.l("%s (%s) %s: %s to %s by %s as %s"), c.ID, c.Kind, c.Result, utc(c.Start), utc(c.End), orDash(c.OSUser), orDash(c.WinRMUser))
			if c.Ticket != "" {
				s += ", ticket " + c.Ticket
			}
			if c.BackupFile != "" {
				s += fmt.Sprintf("\nbackup %s sha256 %s", c.BackupFile, c.BackupSHA256)
			}
			for _, a := range c.Applied {
				s += fmt.Sprintf("\n%s %s: %s → %s", a.Object, a.Setting, r.value(a.Object, a.Setting, a.Current), r.value(a.Object, a.Setting, a.New))
			}
			if c.Error != "" {
				s += "\nerror: " + c.Error
			}
			ch = append(ch, s)
			if i := r.changeIndex(c); i >= 0 {
				hashes = append(hashes, fmt.Sprintf("changes[%d] %s", i, r.sectionHash(fmt.Sprintf("changes[%d]", i))))
			}
		}
		pairs = append(pairs, [2]string{r.l("Change"), strings.Join(ch, "\n\n")})
	} else {
		pairs = append(pairs, [2]string{r.l("Change"), r.l("None recorded.")})
	}
	// Verification.
	if f.Row != nil {
		if a := f.Row.After; a != nil {
			run := b.Audits[a.Run]
			s := fmt.Sprintf(r.l("Run %d (%s) %s from %s: %s"), a.Run+1, run.Purpose, utc(a.EP.Start), orDash(strings.Join(run.Result.Vantage.SourceAddrs, ", ")), f.Row.afterStatus())
			if a.EP.Reason != "" {
				s += " (" + a.EP.Reason + ")"
			}
			s += r.insideViewNote(a)
			s += "\n" + fmt.Sprintf(r.l("Transcript: Appendix A, run %d, %s"), a.Run+1, f.Row.Key.String())
			pairs = append(pairs, [2]string{r.l("Verification"), s})
			hashes = append(hashes, fmt.Sprintf("audits[%d] %s", a.Run, r.sectionHash(fmt.Sprintf("audits[%d]", a.Run))))
		} else {
			pairs = append(pairs, [2]string{r.l("Verification"), r.l("Not re-tested.")})
		}
	}
	pairs = append(pairs, [2]string{r.l("Compliance"), f.Controls})
	pairs = append(pairs, [2]string{r.l("Evidence hashes"), strings.Join(hashes, "\n")})
	r.kv(pairs...)
}

// relayRemediationKey picks the advice for the platform the inspection
// found: IIS SMTP, Exchange 2000/2003 (IIS SMTP driven from Active
// Directory) or Exchange 2007 and later (receive connectors). Without an
// inspection the advice names no product.
func relayRemediationKey(in *remediate.Inspection) string {
	if in == nil {
		return "finding.relay.remediation"
	}
	switch in.Platform {
	case remediate.PlatformIIS:
		return "finding.relay.remediation.iis"
	case remediate.PlatformExchange2003:
		return "finding.relay.remediation.exchange2003"
	case remediate.PlatformExchange:
		return "finding.relay.remediation.exchange"
	}
	return "finding.relay.remediation"
}

func explains(b bool) string {
	if b {
		return "explains the relay seen"
	}
	return "reachable from other networks"
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// ---- Changes, verification, compliance ----

func (r *renderer) changeLog() {
	b := r.m.b
	r.section("changes")
	r.para(r.t.get("changes.intro"))
	if len(b.Changes) == 0 {
		r.para(r.t.get("changes.none"))
		return
	}
	for i, c := range b.Changes {
		r.heading(fmt.Sprintf("%s  %s on %s: %s", c.ID, c.Kind, c.Host, c.Result))
		pairs := [][2]string{
			{r.l("Time (UTC)"), fmt.Sprintf(r.l("%s to %s"), utc(c.Start), utc(c.End))},
			{r.l("Executed by"), fmt.Sprintf(r.l("%s (WinRM user %s)"), orDash(c.OSUser), orDash(c.WinRMUser))},
			{r.l("Ticket"), orDash(c.Ticket)},
			{r.l("Platform"), string(c.Platform)},
			{r.l("Backup"), orDash(c.BackupFile) + reason(orDashIf(c.BackupFile != "", "sha256 "+c.BackupSHA256))},
			{r.l("Scripts (SHA-256)"), orDash(changeScripts(&c))},
		}
		if c.Error != "" {
			pairs = append(pairs, [2]string{r.l("Error"), c.Error})
		}
		if len(c.Mismatches) > 0 {
			pairs = append(pairs, [2]string{r.l("Read-back mismatches"), strings.Join(c.Mismatches, "\n")})
		}
		pairs = append(pairs, [2]string{r.l("Section hash"), fmt.Sprintf("changes[%d] %s", i, r.sectionHash(fmt.Sprintf("changes[%d]", i)))})
		r.kv(pairs...)
		var rows [][]cellSpec
		for _, a := range c.Applied {
			rows = append(rows, []cellSpec{txt(a.Object), txt(a.Setting), mono(r.value(a.Object, a.Setting, a.Current)), mono(r.value(a.Object, a.Setting, a.New)), txt(a.Why)})
		}
		if len(rows) > 0 {
			r.subheading(r.l("Applied changes"))
			r.table([]float64{34, 28, 34, 34, contentW - 130}, r.ls("Object", "Setting", "Before", "After", "Why"), rows)
		}
		if len(c.Planned) != len(c.Applied) {
			r.muted(clean(fmt.Sprintf(r.l("%d changes were planned, %d applied."), len(c.Planned), len(c.Applied))))
		}
	}
}

func orDashIf(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

func (r *renderer) verification() {
	m := r.m
	r.section("verification")
	r.para(r.t.get("verification.intro"))
	var rows [][]cellSpec
	fid := map[*row]string{}
	for _, f := range m.findings {
		if f.Row != nil {
			fid[f.Row] = f.ID
		}
	}
	for _, rw := range m.rows {
		bt, at := "—", "—"
		if rw.Before != nil {
			bt = fmt.Sprintf("run %d\n%s", rw.Before.Run+1, utc(rw.Before.EP.Start))
		}
		if rw.After != nil {
			at = fmt.Sprintf("run %d\n%s", rw.After.Run+1, utc(rw.After.EP.Start))
		}
		rows = append(rows, []cellSpec{txt(rw.Key.String()), stat(rw.beforeStatus()), txt(bt), stat(rw.afterStatus()), txt(at), txt(orDash(fid[rw]))})
	}
	if len(rows) == 0 {
		r.para(r.t.get("summary.none"))
		return
	}
	r.table([]float64{contentW - 128, 26, 30, 26, 30, 16}, r.ls("Endpoint", "Before", "Tested (UTC)", "After", "Re-tested (UTC)", "Finding"), rows)
}

func (r *renderer) compliance() {
	m := r.m
	r.section("compliance")
	r.para(r.t.get("compliance.intro"))
	var rows [][]cellSpec
	for _, c := range r.t.rows("compliance.rows") {
		for len(c) < 3 {
			c = append(c, "")
		}
		rows = append(rows, []cellSpec{txt(c[0]), {text: c[1], bold: true}, txt(c[2])})
	}
	r.table([]float64{34, 50, contentW - 84}, r.ls("Framework", "Control", "Title"), rows)
	if len(m.findings) == 0 {
		return
	}
	r.heading(r.l("Findings and controls"))
	rows = nil
	for _, f := range m.findings {
		ctl := f.Controls
		if len(f.Changes) > 0 {
			ctl += "\n" + r.t.get("compliance.change")
		}
		rows = append(rows, []cellSpec{{text: f.ID, bold: true}, txt(r.findingTitle(f)), txt(ctl)})
	}
	r.table([]float64{18, 70, contentW - 88}, r.ls("Finding", "Title", "Controls"), rows)
	r.muted(clean(fmt.Sprintf(r.l("Every engagement: ISO/IEC 27001:2022 A.8.34 (authorization %s)."), orDash(m.b.Engagement.Authorization))))
}

// ---- Appendices ----

func (r *renderer) transcripts() {
	b := r.m.b
	r.section("transcripts")
	r.para(r.t.get("transcripts.intro"))
	for i, a := range b.Audits {
		if a.Result == nil {
			continue
		}
		for _, t := range a.Result.Targets {
			for ei := range t.Endpoints {
				ep := &t.Endpoints[ei]
				k := epKey{ep.MXHost, ep.Address, ep.Port, ep.TLS}
				r.need(24)
				r.d.ln(2)
				title := fmt.Sprintf(r.l("Run %d (%s): %s"), i+1, a.Purpose, k.String())
				r.bookmark(title, 1)
				r.heading(title)
				r.muted(clean(fmt.Sprintf(r.l("Verdict %s%s. %d connections, %d commands, %s to %s."), verdictWord(ep.Verdict), inlineReason(ep.Reason), ep.Connections, ep.Commands, utc(ep.Start), utc(ep.End))))
				r.transcriptInsideView(a, ep)
				for ti := range ep.Transcripts {
					r.transcript(&ep.Transcripts[ti], lineLabels(&ep.Transcripts[ti], ep.Tests))
				}
				if len(ep.Transcripts) == 0 {
					r.muted(clean(r.l("No transcript recorded.")))
				}
			}
		}
	}
}

// transcript prints one connection, each line with the time since the
// connection opened and the test it belongs to (labels, from lineLabels).
func (r *renderer) transcript(tr *audit.Transcript, labels []string) {
	d := r.d
	r.subheading(fmt.Sprintf(r.l("Connection %d: %s → %s, %s"), tr.Conn, orDash(tr.Local), tr.Remote, utc(tr.Start)))
	d.font(fontMono, "", monoSize)
	r.color(colInk)
	cw := d.width("0")
	per := int(contentW / cw)
	const prefix = 20 // "+12345ms  R13b  C: "
	var lines []string
	for i, l := range tr.Lines {
		rel := ""
		if !l.T.IsZero() && !tr.Start.IsZero() {
			rel = fmt.Sprintf("+%dms", l.T.Sub(tr.Start).Milliseconds())
		}
		head := fmt.Sprintf("%-9s %-5s %s: ", rel, clean(labels[i]), clean(l.Dir))
		for j, part := range hardWrap(clean(l.Text)+"¶", per-prefix) {
			if j == 0 {
				lines = append(lines, padTo(head, prefix)+part)
			} else {
				lines = append(lines, strings.Repeat(" ", prefix-2)+"» "+part)
			}
		}
	}
	if tr.Truncated > 0 {
		lines = append(lines, fmt.Sprintf("[%d further lines were not kept by the probe, to bound memory; the count is in the evidence]", tr.Truncated))
	}
	r.monoBlock(lines)
}

// monoBlock prints pre-wrapped monospaced lines on a light background.
func (r *renderer) monoBlock(lines []string) {
	d := r.d
	r.fill(rgb{246, 248, 250})
	// Lines per page: what fits here, then full pages; the last page
	// takes at least minTail of lines, moved from the page before.
	first := int((r.bottom() - d.y()) / monoLineH)
	full := int((r.bottom() - marginT) / monoLineH)
	if first < 1 {
		d.addPage()
		first = full
	}
	breakAt := map[int]bool{}
	if len(lines) > first {
		var starts []int // index of the first line of each new page
		for i := first; i < len(lines); i += full {
			starts = append(starts, i)
		}
		last := len(starts) - 1
		tail := minTail
		tailMin := int(tail / monoLineH)
		if rest := len(lines) - starts[last]; rest < tailMin {
			lo := min(3, first) // a few lines under the subheading
			if last > 0 {
				lo = starts[last-1] + 1
			}
			starts[last] = max(lo, len(lines)-tailMin)
		}
		for _, i := range starts {
			breakAt[i] = true
		}
	}
	for i, l := range lines {
		// A planned break is skipped at the top of a page (the line
		// before it may have broken a rounding error early).
		if breakAt[i] && d.y() > marginT+0.1 || d.y()+monoLineH > r.bottom() {
			d.addPage()
		}
		d.font(fontMono, "", monoSize)
		r.color(colInk)
		d.setX(marginL)
		d.cell(contentW, monoLineH, l, "", 1, "L", true, 0)
	}
	r.body()
	d.ln(2)
}

func padTo(s string, n int) string {
	if c := len([]rune(s)); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}

// rawBlock prints untrusted multi-line output (script stdout) wrapped.
func (r *renderer) rawBlock(s string) {
	d := r.d
	d.font(fontMono, "", monoSize)
	per := int(contentW / d.width("0"))
	var lines []string
	for _, l := range splitLines(s) {
		for j, part := range hardWrap(clean(l)+"¶", per-2) {
			if j > 0 {
				part = "» " + part
			}
			lines = append(lines, part)
		}
	}
	r.monoBlock(lines)
}

func (r *renderer) configs() {
	b := r.m.b
	r.section("config")
	r.para(r.t.get("config.intro"))
	for i := range b.Inspections {
		in := &b.Inspections[i]
		title := fmt.Sprintf(r.l("Inspection of %s, %s"), in.Host, utc(in.Time))
		r.need(24)
		r.bookmark(title, 1)
		r.heading(title)
		r.muted(clean(fmt.Sprintf(r.l("Platform %s; prober addresses %s; section inspections[%d] sha256 %s"), in.Platform, orDash(strings.Join(in.Prober, ", ")), i, r.sectionHash(fmt.Sprintf("inspections[%d]", i)))))
		var rows [][]cellSpec
		for _, s := range in.Settings {
			rows = append(rows, []cellSpec{txt(s.Object), txt(s.Name), mono(r.value(s.Object, s.Name, s.Value))})
		}
		if len(rows) > 0 {
			r.subheading(r.l("Settings"))
			r.table([]float64{58, 36, contentW - 94}, r.ls("Object", "Setting", "Value"), rows)
		}
		for _, run := range in.Runs {
			r.subheading(fmt.Sprintf(r.l("Script %s, exit code %d, %s to %s"), run.Script, run.ExitCode, utc(run.Start), utc(run.End)))
			meta := "sha256 " + run.SHA256
			if len(run.Params) > 0 {
				keys := make([]string, 0, len(run.Params))
				for k := range run.Params {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					meta += "\nparam " + k + " = " + run.Params[k]
				}
			}
			for _, e := range run.Errors {
				meta += "\nerror: " + e
			}
			r.muted(cleanText(meta))
			if dec, ok := r.decodeOutput(run.Stdout); ok {
				id := r.rawRef(fmt.Sprintf(r.l("Output of script %s, inspections[%d], as received"), run.Script, i), run.Stdout)
				r.muted(clean(fmt.Sprintf(r.l("Output with each base64 field decoded; as received in Appendix D, %s:"), id)))
				r.rawBlock(dec)
			} else {
				r.rawBlock(run.Stdout)
			}
			if run.Stderr != "" {
				r.muted(clean(r.l("stderr:")))
				r.rawBlock(run.Stderr)
			}
		}
	}
	for _, c := range b.Changes {
		title := fmt.Sprintf(r.l("Change %s on %s: before and after"), c.ID, c.Host)
		r.need(24)
		r.bookmark(title, 1)
		r.heading(title)
		type ba struct{ before, after string }
		var order []remediate.Setting
		vals := map[[2]string]*ba{}
		for _, s := range c.Before {
			k := [2]string{s.Object, s.Name}
			if vals[k] == nil {
				vals[k] = &ba{before: remediate.ValueAbsent, after: remediate.ValueAbsent}
				order = append(order, s)
			}
			vals[k].before = s.Value
		}
		for _, s := range c.After {
			k := [2]string{s.Object, s.Name}
			if vals[k] == nil {
				vals[k] = &ba{before: remediate.ValueAbsent, after: remediate.ValueAbsent}
				order = append(order, s)
			}
			vals[k].after = s.Value
		}
		var rows [][]cellSpec
		for _, s := range order {
			v := vals[[2]string{s.Object, s.Name}]
			mark := ""
			if v.before != v.after {
				mark = "changed"
			}
			rows = append(rows, []cellSpec{txt(s.Object), txt(s.Name), mono(r.value(s.Object, s.Name, v.before)), mono(r.value(s.Object, s.Name, v.after)), {text: mark, bold: true}})
		}
		if len(rows) == 0 {
			r.muted(clean(r.l("No settings were read back.")))
			continue
		}
		r.table([]float64{38, 30, 44, 44, contentW - 156}, r.ls("Object", "Setting", "Before", "After", ""), rows)
	}
}

func (r *renderer) manifest() {
	b, m := r.m.b, r.m
	r.section("manifest")
	r.para(r.t.get("manifest.intro"))
	r.kv([2]string{r.l("Digest"), m.digest}, [2]string{r.l("Report ID"), b.ID})
	var rows [][]cellSpec
	for _, s := range m.hashes.Sections {
		if s.Name == "log" || strings.HasPrefix(s.Name, "artifacts[") {
			continue // not covered by the digest, may change after rendering
		}
		rows = append(rows, []cellSpec{txt(s.Name), mono(s.SHA256)})
	}
	r.table([]float64{40, contentW - 40}, r.ls("Section", "SHA-256"), rows)
}

// rawValues is Appendix D: the encoded values the body shows decoded.
func (r *renderer) rawValues() {
	r.section("raw")
	r.para(r.t.get("raw.intro"))
	if len(r.raws) == 0 {
		r.para(r.t.get("raw.none"))
		return
	}
	for _, it := range r.raws {
		r.subheading(it.id + "  " + clean(it.title))
		r.rawBlock(it.text)
	}
}

// replyLine is a reply as sent: its code, its enhanced code unless the
// text already starts with it (as a parsed reply's does), its lines.
func replyLine(rep *audit.Reply) string {
	text := strings.Join(rep.Lines, " / ")
	s := fmt.Sprint(rep.Code)
	if rep.Enhanced != "" && !strings.HasPrefix(text, rep.Enhanced) {
		s += " " + rep.Enhanced
	}
	return strings.TrimSpace(s + " " + text)
}
