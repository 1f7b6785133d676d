package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/report/evidence"
)

// Options shape a rendering. None of them is read from the clock or the
// environment, so the same bundle and options give the same bytes.
type Options struct {
	// TemplateDir overrides the report texts (DIR/texts.txt, any subset
	// of the keys in templates/report/texts.txt) and the logo
	// (DIR/logo.png).
	TemplateDir string
	// LogoPNG is a PNG file for the cover (8-bit, not interlaced); it
	// takes precedence over DIR/logo.png.
	LogoPNG string
	// Client is the client name for evidence that names none; it is
	// printed as given at rendering, and the caller records it with the
	// report (Provenance). A name that differs from the engagement's
	// client is refused (ErrClientConflict): the report never says what
	// the sealed evidence does not.
	Client string
	// EvidenceSHA256 is the SHA-256 of the evidence file the bundle was
	// read from; printed in document control when set. The cover always
	// prints the bundle's content digest (evidence.Bundle.Digest), which
	// `relaylock verify` prints too.
	EvidenceSHA256 string
	// SigningKey is the fingerprint of the key the evidence and report
	// will be signed with (evidence.Fingerprint), printed on the cover so
	// that a reader knows which key to expect in FILE.sig.json.
	SigningKey string
	// Modified names the sections (and files) of evidence that does not
	// match its seal (evidence.CheckResult.Modified), for a report the
	// operator asked for anyway: every page then carries the
	// ModifiedBanner naming them. Empty for evidence that verifies.
	Modified []string
}

// ErrClientConflict is an Options.Client that differs from the client the
// evidence names.
var ErrClientConflict = errors.New("the client name differs from the one the evidence names")

// CheckClient refuses a client name that differs from the one the
// evidence names (the same name, or evidence without one, is fine).
func CheckClient(b *evidence.Bundle, client string) error {
	if client != "" && b != nil && b.Engagement.Client != "" && client != b.Engagement.Client {
		return fmt.Errorf("%w: %q given, the evidence names %q", ErrClientConflict, client, b.Engagement.Client)
	}
	return nil
}

// Provenance is what a rendering used that the evidence does not hold:
// a client name the evidence lacks, custom texts (by the SHA-256 of the
// texts file). The PDF's cover names it; the caller records it with the
// report's artifact (evidence.RecordRendered).
type Provenance = evidence.Rendering

// ErrRender wraps a failure inside the PDF library (including a recovered
// panic), so that callers can tell it from an I/O error.
var ErrRender = errors.New("render report")

// Render writes the PDF report of b to w. It makes no network calls and
// reads no clock: the dates come from the evidence.
func Render(w io.Writer, b *evidence.Bundle, opts Options) error {
	var buf bytes.Buffer
	if _, err := render(&buf, b, opts); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteFile renders to path atomically (mode 0600: the report holds host
// data) and returns what the rendering used that the evidence does not
// hold, for the caller to record with the report.
func WriteFile(path string, b *evidence.Bundle, opts Options) (Provenance, error) {
	var buf bytes.Buffer
	lay, err := render(&buf, b, opts)
	if err != nil {
		return Provenance{}, err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return Provenance{}, fmt.Errorf("write report: %w", err)
	}
	return lay.Provenance, nil
}

// outlineEntry is a bookmark or contents entry and the page it points to
// (for tests).
type outlineEntry struct {
	Title string
	Level int
	Page  int
}

// layout is where render put things, for tests to check the PDF against.
type layout struct {
	Outline    []outlineEntry // bookmarks, in order
	TOC        []outlineEntry // contents entries, in order
	Provenance Provenance     // what the rendering used beyond the evidence
}

// render does the work and returns the bookmarks it made.
func render(w io.Writer, b *evidence.Bundle, opts Options) (lay *layout, err error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no evidence", ErrRender)
	}
	if err := CheckClient(b, opts.Client); err != nil {
		return nil, err
	}
	t, textsSHA, err := loadTexts(opts.TemplateDir)
	if err != nil {
		return nil, err
	}
	prov := Provenance{TemplateSHA256: textsSHA}
	if b.Engagement.Client == "" {
		prov.Client = opts.Client
	}
	logo, err := readLogo(opts)
	if err != nil {
		return nil, err
	}
	m, err := buildModel(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRender, err)
	}
	defer func() {
		// gofpdf panics on some inputs (docs/reporting.md §4.3 #3); clean()
		// prevents the known ones, this catches the rest.
		if p := recover(); p != nil {
			lay, err = nil, fmt.Errorf("%w: %v", ErrRender, p)
		}
	}()
	r := newRenderer(m, t, opts, logo)
	r.prov = prov
	r.all()
	if err := r.d.output(w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRender, err)
	}
	lay = &layout{Outline: r.outline, Provenance: prov}
	for _, e := range r.toc {
		lay.TOC = append(lay.TOC, outlineEntry{Title: e.title, Level: e.level, Page: e.page})
	}
	return lay, nil
}

func readLogo(opts Options) ([]byte, error) {
	p := opts.LogoPNG
	if p == "" && opts.TemplateDir != "" {
		p = filepath.Join(opts.TemplateDir, LogoFile)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if p == "" {
		return nil, nil
	}
	data, err := atomicfile.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read logo: %w", err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		return nil, fmt.Errorf("read logo %s: not a PNG file", p)
	}
	return data, nil
}
