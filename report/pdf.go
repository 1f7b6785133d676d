package report

// This is the only file that imports gofpdf (unmaintained since 2019,
// STYLE.md lesson 14): a small seam, so that a move to a fork such as
// codeberg.org/go-pdf/fpdf touches this file alone.

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// Font families registered in every document.
const (
	fontSans = "go"
	fontMono = "gomono"
)

// docMeta is the document information dictionary.
type docMeta struct {
	Title, Author, Subject, Keywords, Creator string
	Date                                      time.Time
}

// doc wraps one gofpdf document. All text passed to it must already be
// cleaned (clean, cleanText); it checks again and replaces what slipped
// through, because an unclean rune makes gofpdf panic.
type doc struct {
	f *gofpdf.Fpdf
}

func newDoc(meta docMeta) *doc {
	f := gofpdf.New("P", "mm", "A4", "")
	// docs/reporting.md §4.3 #5: gofpdf mutates the font bytes it is given, so
	// each document gets fresh copies, or the second render in a process
	// would differ from the first.
	f.AddUTF8FontFromBytes(fontSans, "", bytes.Clone(goregular.TTF))
	f.AddUTF8FontFromBytes(fontSans, "B", bytes.Clone(gobold.TTF))
	f.AddUTF8FontFromBytes(fontSans, "I", bytes.Clone(goitalic.TTF))
	f.AddUTF8FontFromBytes(fontMono, "", bytes.Clone(gomono.TTF))
	// Determinism: sorted catalog, fixed dates in UTC (§4.3 #2: gofpdf
	// drops the zone, so a local time would be off by its offset).
	f.SetCatalogSort(true)
	f.SetCreationDate(meta.Date.UTC())
	f.SetModificationDate(meta.Date.UTC())
	f.SetTitle(clean(meta.Title), true)
	f.SetAuthor(clean(meta.Author), true)
	f.SetSubject(clean(meta.Subject), true)
	f.SetKeywords(clean(meta.Keywords), true)
	f.SetCreator(clean(meta.Creator), true)
	f.SetProducer("relaylock (gofpdf v1.16.2)", true)
	f.SetCompression(true)
	return &doc{f: f}
}

func safe(s string) string {
	if isClean(s) {
		return s
	}
	return clean(s)
}

func (d *doc) aliasPages(alias string)               { d.f.AliasNbPages(alias) }
func (d *doc) setMargins(l, t, r float64)            { d.f.SetMargins(l, t, r) }
func (d *doc) setAutoPageBreak(on bool, m float64)   { d.f.SetAutoPageBreak(on, m) }
func (d *doc) setHeader(fn func())                   { d.f.SetHeaderFuncMode(fn, false) }
func (d *doc) setFooter(fn func())                   { d.f.SetFooterFunc(fn) }
func (d *doc) addPage()                              { d.f.AddPage() }
func (d *doc) pageNo() int                           { return d.f.PageNo() }
func (d *doc) setPage(n int)                         { d.f.SetPage(n) }
func (d *doc) y() float64                            { return d.f.GetY() }
func (d *doc) setXY(x, y float64)                    { d.f.SetXY(x, y) }
func (d *doc) setX(x float64)                        { d.f.SetX(x) }
func (d *doc) ln(h float64)                          { d.f.Ln(h) }
func (d *doc) textColor(r, g, b int)                 { d.f.SetTextColor(r, g, b) }
func (d *doc) fillColor(r, g, b int)                 { d.f.SetFillColor(r, g, b) }
func (d *doc) drawColor(r, g, b int)                 { d.f.SetDrawColor(r, g, b) }
func (d *doc) lineWidth(w float64)                   { d.f.SetLineWidth(w) }
func (d *doc) rect(x, y, w, h float64, style string) { d.f.Rect(x, y, w, h, style) }
func (d *doc) line(x1, y1, x2, y2 float64)           { d.f.Line(x1, y1, x2, y2) }
func (d *doc) addLink() int                          { return d.f.AddLink() }
func (d *doc) setLink(link int, y float64, page int) { d.f.SetLink(link, y, page) }

// font selects a family ("go" or "gomono"), a style ("", "B", "I") and a
// size in points.
func (d *doc) font(family, style string, size float64) { d.f.SetFont(family, style, size) }

// forceFont selects a font even if it is the current one, which gofpdf
// would otherwise skip; needed after setPage to an earlier page.
func (d *doc) forceFont(family, style string, size float64) {
	d.f.SetFont(fontMono, "", size+1)
	d.f.SetFont(family, style, size)
}

// cell draws one line of text in a box: border "" or "1" or sides
// ("LTRB"), ln 0 (right), 1 (next line) or 2 (below), align "L", "C", "R".
func (d *doc) cell(w, h float64, s, border string, ln int, align string, fill bool, link int) {
	d.f.CellFormat(w, h, safe(s), border, ln, align, fill, link, "")
}

// cellRaw draws text that holds the page-count alias, which clean would
// escape; the caller has cleaned the rest of it.
func (d *doc) cellRaw(w, h float64, s string) {
	d.f.CellFormat(w, h, s, "", 0, "L", false, 0, "")
}

// multiCell draws wrapped text; a line feed starts a new line.
func (d *doc) multiCell(w, h float64, s, border, align string, fill bool) {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safe(l)
	}
	d.f.MultiCell(w, h, strings.Join(lines, "\n"), border, align, fill)
}

// split wraps text to width w at spaces (or anywhere in a long word);
// a line feed starts a new line.
func (d *doc) split(s string, w float64) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l == "" {
			out = append(out, "")
			continue
		}
		out = append(out, d.f.SplitText(safe(l), w)...)
	}
	return out
}

func (d *doc) width(s string) float64 { return d.f.GetStringWidth(safe(s)) }

// bookmark adds an outline entry at the current page and y.
func (d *doc) bookmark(s string, level int) { d.f.Bookmark(safe(s), level, -1) }

// image draws a PNG from r scaled to width w (height from the aspect).
func (d *doc) image(name string, r io.Reader, x, y, w, h float64) error {
	opt := gofpdf.ImageOptions{ImageType: "PNG", ReadDpi: false}
	info := d.f.RegisterImageOptionsReader(name, opt, r)
	if err := d.f.Error(); err != nil || info == nil {
		return fmt.Errorf("logo: %w", err)
	}
	d.f.ImageOptions(name, x, y, w, h, false, opt, 0, "")
	return d.f.Error()
}

// output writes the document, returning gofpdf's sticky error if any.
func (d *doc) output(w io.Writer) error {
	if err := d.f.Error(); err != nil {
		return err
	}
	return d.f.Output(w)
}
