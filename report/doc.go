// Package report renders relaylock's PDF report from an evidence bundle
// (package report/evidence). It is pure: no network, no clock, no
// environment. The same bundle and Options give a byte-identical PDF: the
// dates come from the evidence (the latest time in its content), the PDF
// catalog is sorted, and each render embeds fresh copies of the Go fonts.
//
// The report follows docs/reporting.md §6: cover with the verdict line and
// the evidence digest, contents, document control, executive summary with a
// before/after grid (coloured and labelled in words), scope and
// authorization, methodology, asset inventory, findings summary, a block per
// finding, change log, verification matrix, compliance mapping, and
// appendices with full SMTP transcripts, configuration before and after, and
// the evidence manifest.
//
// Every string from the evidence passes through clean (sanitize.go):
// invalid UTF-8, control characters, bidi controls and runes the fonts lack
// are replaced visibly, never dropped, and long lines wrap with a marker.
//
// The report's words live in templates/report/texts.txt (embedded);
// Options.TemplateDir overrides any of them, so a consultancy can brand and
// translate its reports. gofpdf is imported only by pdf.go.
package report
