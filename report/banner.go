package report

import (
	"fmt"
	"strings"
)

// ModifiedBanner is the fixed text of the band a report rendered from
// evidence that does not verify carries at the top of every page. It is
// not a template text: --template must not be able to hide it.
const ModifiedBanner = "EVIDENCE MODIFIED AFTER SEALING"

// modifiedBanner draws, when Options.Modified is set, a red band at the
// top of the page naming the sections that do not match their seal.
// pageFooter calls it for every page, the cover included: the footer is
// drawn when the page is complete, so nothing on the page covers it.
func (r *renderer) modifiedBanner() {
	if len(r.opts.Modified) == 0 {
		return
	}
	d := r.d
	r.fill(colOpen)
	d.rect(marginL, 3, contentW, 6, "F")
	d.font(fontSans, "B", smallSize)
	r.color(colWhite)
	d.setXY(marginL+1.5, 3.5)
	d.cell(contentW-3, 5, r.bannerText(contentW-3), "", 0, "L", false, 0)
	// Forget the colour cache: gofpdf may restore colours around the
	// footer behind its back.
	r.colorSet, r.fillSet, r.drawSet = false, false, false
}

// bannerText names as many mismatching sections as fit in width w.
func (r *renderer) bannerText(w float64) string {
	names := r.opts.Modified
	for n := len(names); n > 0; n-- {
		s := ModifiedBanner + ": " + strings.Join(names[:n], ", ")
		if n < len(names) {
			s += fmt.Sprintf(" and %d more", len(names)-n)
		}
		s += " (relaylock verify)"
		if r.d.width(s) <= w {
			return s
		}
	}
	return fmt.Sprintf("%s: %d sections (relaylock verify)", ModifiedBanner, len(names))
}
