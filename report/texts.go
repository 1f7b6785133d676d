package report

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/relaylock/relaylock/internal/atomicfile"
	"github.com/relaylock/relaylock/templates"
)

// TextsFile is the name of the texts file, in templates/report/ and in a
// --template directory.
const TextsFile = "texts.txt"

// LogoFile is the optional cover logo in a --template directory.
const LogoFile = "logo.png"

// texts are the report's words, by key (templates/report/texts.txt).
type texts map[string]string

// parseTexts reads the "[key]" format described at the top of texts.txt.
func parseTexts(name string, data string) (texts, error) {
	t := texts{}
	var key string
	var body []string
	flush := func() {
		if key != "" {
			t[key] = strings.TrimSpace(strings.Join(body, "\n"))
		}
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") && !strings.Contains(line, " ") {
			flush()
			key, body = line[1:len(line)-1], nil
			if key == "" {
				return nil, fmt.Errorf("%s:%d: empty key", name, n)
			}
			if _, dup := t[key]; dup {
				return nil, fmt.Errorf("%s:%d: key [%s] given twice", name, n, key)
			}
			continue
		}
		if key == "" {
			if line != "" {
				return nil, fmt.Errorf("%s:%d: text before the first [key]", name, n)
			}
			continue
		}
		body = append(body, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	flush()
	return t, nil
}

// defaultTexts parses the embedded texts.
func defaultTexts() texts {
	data, err := templates.FS.ReadFile("report/" + TextsFile)
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	t, err := parseTexts("templates/report/"+TextsFile, string(data))
	if err != nil {
		panic(err) // tested in TestDefaultTexts
	}
	return t
}

// loadTexts returns the embedded texts overridden by dir/texts.txt, if
// dir is set, and the hex SHA-256 of that file ("" when none was read).
// An override may only use keys the defaults have, and may not change a
// value the evidence decides (fixedWords, the status.* texts): a
// translation may reword sentences, never turn OPEN into CLOSED.
func loadTexts(dir string) (texts, string, error) {
	t := defaultTexts()
	if dir == "" {
		return t, "", nil
	}
	p := filepath.Join(dir, TextsFile)
	data, err := atomicfile.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
			return nil, "", fmt.Errorf("template directory %s: not a directory", dir)
		}
		return t, "", nil // a template directory may hold only a logo
	}
	if err != nil {
		return nil, "", fmt.Errorf("read template: %w", err)
	}
	sum := sha256.Sum256(data)
	o, err := parseTexts(p, string(data))
	if err != nil {
		return nil, "", fmt.Errorf("read template: %w", err)
	}
	var unknown, fixed []string
	for k, v := range o {
		if _, ok := t[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		if strings.HasPrefix(k, "status.") && t.get(k) != o.get(k) {
			fixed = append(fixed, "["+k+"]")
		}
		if k == "labels.rows" {
			for _, row := range o.rows(k) {
				if len(row) >= 2 && fixedWords[row[0]] && row[1] != row[0] {
					fixed = append(fixed, fmt.Sprintf("%q (as %q)", row[0], row[1]))
				}
			}
		}
		t[k] = v
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, "", fmt.Errorf("read template %s: unknown keys %s", p, strings.Join(unknown, ", "))
	}
	if len(fixed) > 0 {
		sort.Strings(fixed)
		return nil, "", fmt.Errorf("%w: %s changes %s; keep these as in templates/report/texts.txt", ErrFixedText, p, strings.Join(fixed, ", "))
	}
	return t, hex.EncodeToString(sum[:]), nil
}

// ErrFixedText is a template that changes a value the evidence decides:
// a verdict word or a finding status.
var ErrFixedText = errors.New("a template may not change verdict words or finding statuses, which come from the evidence")

// fixedWords are the verdict and status words the report prints in
// status cells. They are values of the evidence, not wording, so no
// template may translate them ([labels.rows] keeps them as they are).
var fixedWords = map[string]bool{
	stOpen: true, stClosed: true, stInconclusive: true, stNotRetested: true, stNotTested: true,
	stSet: true, "NO-MAIL": true, stInsideView: true,
}

// get returns the text for key as paragraphs separated by "\n\n", lines
// within a paragraph joined, with {name} placeholders filled from kv
// (name, value pairs). The result is cleaned for the PDF.
func (t texts) get(key string, kv ...string) string {
	v, ok := t[key]
	if !ok {
		return "[" + key + "]" // a missing key shows, it does not vanish
	}
	var paras []string
	for p := range strings.SplitSeq(v, "\n\n") {
		p = strings.TrimSpace(p)
		if p != "" {
			paras = append(paras, strings.Join(strings.Fields(p), " "))
		}
	}
	return fill(strings.Join(paras, "\n\n"), kv...)
}

// rows returns a ".rows" text as cells.
func (t texts) rows(key string) [][]string {
	var out [][]string
	for l := range strings.SplitSeq(t[key], "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		cells := strings.Split(l, " | ")
		for i := range cells {
			cells[i] = clean(strings.TrimSpace(cells[i]))
		}
		out = append(out, cells)
	}
	return out
}

// labels returns the [labels.rows] table as English → translation.
func (t texts) labels() map[string]string {
	m := map[string]string{}
	for _, row := range t.rows("labels.rows") {
		if len(row) >= 2 {
			m[row[0]] = row[1]
		}
	}
	return m
}

// fill replaces {name} with values, cleaning the result.
func fill(s string, kv ...string) string {
	if len(kv) > 0 {
		pairs := make([]string, 0, len(kv))
		for i := 0; i+1 < len(kv); i += 2 {
			pairs = append(pairs, "{"+kv[i]+"}", clean(kv[i+1]))
		}
		s = strings.NewReplacer(pairs...).Replace(s)
	}
	return cleanText(s)
}
