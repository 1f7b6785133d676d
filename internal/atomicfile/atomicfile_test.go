package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "evidence.json")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new content"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new content" {
		t.Fatalf("content %q, %v", b, err)
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestWriteFileFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "backup.json")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory where the file should go makes the rename fail.
	q := filepath.Join(dir, "sub")
	if err := os.Mkdir(q, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(q, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(q, []byte("new"), 0o600); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Errorf("old file changed: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary files left behind after a failure: %v", ents)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestWriteRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "empty")
	if err := os.Mkdir(q, 0o700); err != nil {
		t.Fatal(err)
	}
	// An empty directory is what rename(2) would silently replace.
	err := WriteFile(q, []byte("x"), 0o600)
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("writing over an empty directory: %v, want ErrNotRegular", err)
	}
	if fi, err := os.Stat(q); err != nil || !fi.IsDir() {
		t.Errorf("directory replaced: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestCreateFileNeverReplaces(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noLinks  bool
		existing func(t *testing.T, p string)
	}{
		{"file", false, func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("first"), 0o600)) }},
		{"file, no hard links", true, func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("first"), 0o600)) }},
		{"directory", false, func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o700)) }},
		{"dangling symlink", false, func(t *testing.T, p string) {
			if runtime.GOOS == "windows" {
				t.Skip("symbolic links need privileges on Windows")
			}
			must(t, os.Symlink(filepath.Join(filepath.Dir(p), "nowhere"), p))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noLinks {
				old := link
				link = func(string, string) error { return &os.LinkError{Op: "link", Err: errors.ErrUnsupported} }
				t.Cleanup(func() { link = old })
			}
			dir := t.TempDir()
			p := filepath.Join(dir, "backup.json")
			tc.existing(t, p)
			before, _ := os.Lstat(p)
			err := CreateFile(p, []byte("second"), 0o600)
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("CreateFile over an existing %s: %v, want fs.ErrExist", tc.name, err)
			}
			after, _ := os.Lstat(p)
			if !os.SameFile(before, after) || before.Mode() != after.Mode() {
				t.Errorf("existing %s replaced", tc.name)
			}
			if b, err := os.ReadFile(p); err == nil && string(b) != "first" {
				t.Errorf("content %q, want the first", b)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("temporary files left behind: %v", ents)
			}
		})
	}
}

// TestCreateFileRace is the race the pre-check cannot close: the name is
// taken between the check and the move into place.
func TestCreateFileRace(t *testing.T) {
	for _, noLinks := range []bool{false, true} {
		dir := t.TempDir()
		p := filepath.Join(dir, "backup.json")
		err := Create(p, 0o600, func(w io.Writer) error {
			// Another writer creates the file while this one writes.
			must(t, os.WriteFile(p, []byte("other"), 0o600))
			if noLinks {
				link = func(string, string) error { return &os.LinkError{Op: "link", Err: errors.ErrUnsupported} }
			}
			_, err := w.Write([]byte("mine"))
			return err
		})
		link = os.Link
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("noLinks=%v: %v, want fs.ErrExist", noLinks, err)
		}
		if b, _ := os.ReadFile(p); string(b) != "other" {
			t.Errorf("noLinks=%v: the other writer's file was replaced: %q", noLinks, b)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("noLinks=%v: temporary files left behind: %v", noLinks, ents)
		}
	}
}

func TestCreateFileWrites(t *testing.T) {
	for _, noLinks := range []bool{false, true} {
		if noLinks {
			link = func(string, string) error { return &os.LinkError{Op: "link", Err: errors.ErrUnsupported} }
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "key")
		err := CreateFile(p, []byte("secret"), 0o600)
		link = os.Link
		if err != nil {
			t.Fatalf("noLinks=%v: %v", noLinks, err)
		}
		if b, _ := os.ReadFile(p); string(b) != "secret" {
			t.Errorf("noLinks=%v: content %q", noLinks, b)
		}
		if runtime.GOOS != "windows" {
			if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
				t.Errorf("noLinks=%v: mode %v", noLinks, st.Mode().Perm())
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("noLinks=%v: temporary files left behind: %v", noLinks, ents)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
