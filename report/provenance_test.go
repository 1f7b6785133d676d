package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/templates"
)

// pdfText is the PDF's text (pdftotext; the test is skipped without it
// outside CI).
func pdfText(t *testing.T, data []byte) string {
	t.Helper()
	return run(t, needTool(t, "pdftotext"), writeTemp(t, data), "-")
}

func templateDir(t *testing.T, texts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TextsFile), []byte(texts), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestClientMustMatchEvidence: a --client that differs from the client
// the evidence names is refused, naming both; for evidence without one
// it is printed, said to be given at rendering, and returned to be
// recorded.
func TestClientMustMatchEvidence(t *testing.T) {
	_, err := render(&bytes.Buffer{}, fixtureBundle(), Options{Client: "Beta Corp"})
	if !errors.Is(err, ErrClientConflict) || !strings.Contains(err.Error(), `"Beta Corp"`) || !strings.Contains(err.Error(), `"Example Industries GmbH"`) {
		t.Errorf("conflicting client: %v", err)
	}
	// The evidence's own name is no override.
	same, lay := renderFixture(t, fixtureBundle(), Options{Client: "Example Industries GmbH"})
	plain, _ := renderFixture(t, fixtureBundle(), Options{})
	if !bytes.Equal(same, plain) || lay.Provenance != (Provenance{}) {
		t.Errorf("the evidence's own client name changed the PDF or was recorded: %+v", lay.Provenance)
	}

	b := fixtureBundle()
	b.Engagement.Client = ""
	data, lay := renderFixture(t, b, Options{Client: "Beta Corp"})
	if lay.Provenance.Client != "Beta Corp" || lay.Provenance.TemplateSHA256 != "" {
		t.Errorf("provenance %+v", lay.Provenance)
	}
	text := pdfText(t, data)
	for _, want := range []string{"Beta Corp", "The client name was given when rendering (report --client); the sealed evidence names no client."} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("PDF lacks %q", want)
		}
	}
}

// TestTemplateCannotChangeVerdicts: a template may reword, but not turn
// a verdict word or a finding status into another; the texts it used are
// named on the cover by their SHA-256 and returned to be recorded.
func TestTemplateCannotChangeVerdicts(t *testing.T) {
	for name, texts := range map[string]string{
		"OPEN as CLOSED":  "[labels.rows]\nOPEN | CLOSED\nEndpoint | Endpunkt\n",
		"OPEN as OFFEN":   "[labels.rows]\nOPEN | OFFEN\n",
		"status reworded": "[status.open_after]\nRemediated, verified closed\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := render(&bytes.Buffer{}, fixtureBundle(), Options{TemplateDir: templateDir(t, texts)})
			if !errors.Is(err, ErrFixedText) {
				t.Errorf("err %v, want ErrFixedText", err)
			}
		})
	}

	// A copy of the default texts with one sentence changed renders, and
	// says so on the cover with the texts file's SHA-256.
	def, err := templates.FS.ReadFile("report/" + TextsFile)
	if err != nil {
		t.Fatal(err)
	}
	custom := strings.Replace(string(def), "No finding was recorded.", "Keine Feststellung.", 1)
	sum := sha256.Sum256([]byte(custom))
	want := hex.EncodeToString(sum[:])
	data, lay := renderFixture(t, fixtureBundle(), Options{TemplateDir: templateDir(t, custom)})
	if lay.Provenance.TemplateSHA256 != want || lay.Provenance.Client != "" {
		t.Errorf("provenance %+v, want template sha256 %s", lay.Provenance, want)
	}
	text := strings.Join(strings.Fields(pdfText(t, data)), " ")
	if !strings.Contains(text, "Rendered with custom texts sha256 "+want) {
		t.Errorf("cover does not name the custom texts:\n%.2000s", text)
	}
	// The default rendering says nothing of the kind.
	plain, lay := renderFixture(t, fixtureBundle(), Options{})
	if lay.Provenance != (Provenance{}) || strings.Contains(pdfText(t, plain), "custom texts") {
		t.Error("default rendering claims custom texts")
	}
}
