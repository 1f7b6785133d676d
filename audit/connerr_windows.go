package audit

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// Winsock reports a failed connect with its own error numbers
// (Windows Sockets Error Codes, learn.microsoft.com), which the syscall
// package's Unix-style constants do not match on Windows.
var (
	errnoRefused     = []error{syscall.ECONNREFUSED, windows.WSAECONNREFUSED}
	errnoHostUnreach = []error{syscall.EHOSTUNREACH, windows.WSAEHOSTUNREACH}
	errnoNetUnreach  = []error{syscall.ENETUNREACH, windows.WSAENETUNREACH}
	errnoTimedOut    = []error{syscall.ETIMEDOUT, windows.WSAETIMEDOUT}
)
