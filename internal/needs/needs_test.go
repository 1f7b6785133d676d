package needs

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestMissingIsSummarised(t *testing.T) {
	t.Setenv("CI", "")
	for i := 0; i < 2; i++ {
		t.Run("needs-frobnicator", func(t *testing.T) {
			Missing(t, "frobnicator", "apt-get install frobnicator")
			t.Error("Missing did not skip")
		})
	}
	lines := Summary()
	if len(lines) != 1 || !strings.Contains(lines[0], "2 test(s) need frobnicator") || !strings.Contains(lines[0], "apt-get install frobnicator") {
		t.Fatalf("summary %q", lines)
	}
	var b bytes.Buffer
	write(&b, "./pkg", lines)
	if got := b.String(); !strings.HasPrefix(got, "./pkg: not run: 2 test(s) need frobnicator (TestMissingIsSummarised/needs-frobnicator)") {
		t.Errorf("printed %q", got)
	}
	mu.Lock()
	delete(missing, "frobnicator")
	mu.Unlock()
}

func TestShortPkg(t *testing.T) {
	wd, _ := os.Getwd()
	if got := shortPkg(wd); got != "./internal/needs" {
		t.Errorf("shortPkg(%s) = %q", wd, got)
	}
}
