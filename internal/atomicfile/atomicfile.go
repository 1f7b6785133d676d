// Package atomicfile writes files so that a crash leaves either the old
// content or the new, never a mix: write a temporary file in the same
// directory, sync it, move it into place, then sync the directory.
//
// Two ways of moving it into place:
//   - WriteFile and Write replace the target, but only a regular file (or
//     nothing): a device node, FIFO, socket or directory at the path is
//     refused with ErrNotRegular, never replaced.
//   - CreateFile and Create never replace anything: the file appears under
//     its name only if nothing was there (a hard link of the temporary file,
//     which fails with EEXIST, like O_EXCL), else fs.ErrExist.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotRegular is returned when the target path holds something other
// than a regular file (device node, FIFO, socket, directory), which
// relaylock never replaces.
var ErrNotRegular = errors.New("not a regular file")

// WriteFile atomically replaces path with data. The file is created with
// perm (relaylock uses 0600 for anything that holds host data).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, bytesWriter(path, data))
}

// CreateFile is WriteFile for a file that must not exist yet: it never
// replaces anything at path, and fails with an error wrapping fs.ErrExist
// when path exists (as a file, a directory, a link, anything).
func CreateFile(path string, data []byte, perm os.FileMode) error {
	return Create(path, perm, bytesWriter(path, data))
}

func bytesWriter(path string, data []byte) func(w io.Writer) error {
	return func(w io.Writer) error {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
}

// Write is WriteFile for content produced by write, which writes it to w
// (buffered) as it goes: a large file need not be held in memory first.
// If write returns an error, the target is left as it was.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) error {
	if err := replaceable(path); err != nil {
		return err
	}
	return writeTemp(path, perm, write, func(tmp string) error {
		// Checked again: the content may have taken a while to write.
		if err := replaceable(path); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("rename %s: %w", tmp, err)
		}
		return nil
	})
}

// Create is CreateFile for content produced by write, as Write is for
// WriteFile.
func Create(path string, perm os.FileMode, write func(w io.Writer) error) error {
	if err := absent(path); err != nil {
		return err
	}
	return writeTemp(path, perm, write, func(tmp string) error {
		return publish(tmp, path)
	})
}

// link is os.Link (a seam for tests of the fallback).
var link = os.Link

// publish gives the finished temporary file tmp the name path, if and
// only if nothing has that name: link(2) fails with EEXIST rather than
// replace. Where hard links are not supported (some FAT and network file
// systems), the name is claimed with O_CREATE|O_EXCL and the temporary
// file renamed over the empty file just claimed.
func publish(tmp, path string) error {
	err := link(tmp, path)
	if err == nil {
		os.Remove(tmp)
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; not replacing it: %w", path, fs.ErrExist)
	}
	f, cerr := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if cerr != nil {
		if errors.Is(cerr, fs.ErrExist) {
			return fmt.Errorf("%s already exists; not replacing it: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("create %s: %w (hard link: %v)", path, cerr, err)
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// writeTemp writes the content to a synced temporary file beside path and
// hands it to place, which moves it into place; on any failure the
// temporary file is removed.
func writeTemp(path string, perm os.FileMode, write func(w io.Writer) error, place func(tmp string) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = place(tmp); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// Replaceable returns nil when Write may replace path: nothing is there,
// or a regular file (following a symbolic link: a link to a device is
// refused too); else an error wrapping ErrNotRegular (or the stat error).
// Callers that read a file before rewriting it check first, since reading
// a FIFO blocks.
func Replaceable(path string) error { return replaceable(path) }

func replaceable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is %s, %w: refusing to replace it", path, describe(fi.Mode()), ErrNotRegular)
	}
	return nil
}

// absent checks that nothing has the name path (a dangling symbolic link
// counts as something).
func absent(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case fi.Mode().IsRegular():
		return fmt.Errorf("%s already exists; not replacing it: %w", path, fs.ErrExist)
	}
	return fmt.Errorf("%s already exists (%s); not replacing it: %w", path, describe(fi.Mode()), fs.ErrExist)
}

func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeDir != 0:
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file (mode " + m.String() + ")"
}
