package remediate

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The README's "Unverified facts" list mirrors UnverifiedFacts.
func TestUnverifiedFactsMirrorREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### Unverified facts")
	if i < 0 {
		t.Fatal("README has no Unverified facts section")
	}
	sec := s[i+len("### Unverified facts"):]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var readme []string
	for _, m := range regexp.MustCompile("(?m)^- `([a-z0-9-]+)`:").FindAllStringSubmatch(sec, -1) {
		readme = append(readme, m[1])
	}
	var code []string
	for _, f := range UnverifiedFacts {
		if f.ID == "" || f.Fact == "" || f.Consequence == "" || f.Where == "" {
			t.Errorf("incomplete fact %+v", f)
		}
		code = append(code, f.ID)
	}
	sort.Strings(readme)
	sort.Strings(code)
	if strings.Join(readme, ",") != strings.Join(code, ",") {
		t.Errorf("README lists %v, remediate.UnverifiedFacts %v", readme, code)
	}
}
