package report

import (
	"os"
	"testing"
)

func TestSmokeWrite(t *testing.T) {
	out := os.Getenv("RL_SMOKE")
	if out == "" {
		t.Skip("RL_SMOKE not set")
	}
	if err := WriteFile(out, fixtureBundle(), Options{}); err != nil {
		t.Fatal(err)
	}
}
