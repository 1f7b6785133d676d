package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Reading files the operator names (evidence, backups, keys, targets,
// templates, CA and password files). Only a regular file is read, or a
// symbolic link to one: opening a FIFO with no writer blocks open(2)
// forever (and Ctrl-C cannot end a blocked system call), a device may
// never end, and a directory or socket holds no such file.

// CheckRegular returns nil when path is a regular file (following a
// symbolic link), an error wrapping ErrNotRegular that names what it is
// otherwise, or the stat error (fs.ErrNotExist for a missing file).
func CheckRegular(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return regular(path, fi.Mode())
}

func regular(path string, m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is %s, %w: refusing to read it", path, describe(m), ErrNotRegular)
}

// Open opens path for reading if it is a regular file (CheckRegular). It
// checks before opening, and again on the open file, which is opened
// without blocking where the OS allows (O_NONBLOCK), so that a FIFO put
// in its place in between is refused too rather than waited on.
func Open(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil {
		if err := regular(path, fi.Mode()); err != nil {
			return nil, err
		}
	} // else: let open report the error, as it always did
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = regular(path, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile is os.ReadFile for a regular file only (Open).
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
