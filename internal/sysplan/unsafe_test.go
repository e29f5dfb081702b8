//go:build linux

package sysplan

import "unsafe"

func unsafePointerAt[T any](p *T, off uintptr) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(p), off)
}
