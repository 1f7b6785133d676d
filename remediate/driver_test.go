package remediate

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// platformConstants returns the value of every constant of type Platform
// declared in the package's source, so that a new platform added without
// a driver fails TestEveryPlatformHasADriver.
func platformConstants(t *testing.T) []Platform {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var ps []Platform
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Platform" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: a Platform constant that is not a string literal", fset.Position(v.Pos()))
					}
					s, _ := strconv.Unquote(lit.Value)
					ps = append(ps, Platform(s))
				}
			}
		}
	}
	slices.Sort(ps)
	return ps
}

func TestEveryPlatformHasADriver(t *testing.T) {
	consts := platformConstants(t)
	if len(consts) < 3 {
		t.Fatalf("found only %v Platform constants", consts)
	}
	if got := Platforms(); !slices.Equal(got, consts) {
		t.Errorf("Platforms() = %v, want every Platform constant, sorted: %v", got, consts)
	}
	for _, p := range consts {
		d, err := DriverFor(p)
		if err != nil {
			t.Errorf("DriverFor(%q): %v", p, err)
			continue
		}
		if d.Platform() != p {
			t.Errorf("DriverFor(%q).Platform() = %q", p, d.Platform())
		}
	}
}

func TestDriverForUnknownPlatform(t *testing.T) {
	for _, p := range []Platform{"", "exchange5.5", "IIS-SMTP", "iis-smtp "} {
		d, err := DriverFor(p)
		if d != nil || !errors.Is(err, ErrUnknownPlatform) {
			t.Errorf("DriverFor(%q) = %v, %v; want ErrUnknownPlatform", p, d, err)
			continue
		}
		// The message names the platform asked for and the ones known.
		if msg := err.Error(); !strings.Contains(msg, strconv.Quote(string(p))) || !strings.Contains(msg, string(PlatformExchange2003)) {
			t.Errorf("DriverFor(%q) error %q does not name the platform and the known ones", p, msg)
		}
	}
}

// TestDriverForGivesFreshDrivers: a driver told a domain controller does
// not change the one the next caller gets.
func TestDriverForGivesFreshDrivers(t *testing.T) {
	d, err := DriverFor(PlatformExchange2003)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.(DCDriver).WithDC("dc1.corp.example")
	d2, _ := DriverFor(PlatformExchange2003)
	if dc := d2.(*Exchange2003Driver).DC; dc != "" {
		t.Fatalf("DriverFor returned a driver with DC %q", dc)
	}
}
