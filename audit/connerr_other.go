//go:build !windows

package audit

import "syscall"

// The errno values of a failed connect (connect(2)).
var (
	errnoRefused     = []error{syscall.ECONNREFUSED}
	errnoHostUnreach = []error{syscall.EHOSTUNREACH}
	errnoNetUnreach  = []error{syscall.ENETUNREACH}
	errnoTimedOut    = []error{syscall.ETIMEDOUT}
)
