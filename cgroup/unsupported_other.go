//go:build !linux

package cgroup

import "github.com/stockade/stockade/internal/unsupported"

// On a system other than Linux the package keeps its API, so that a program
// that embeds it compiles there, but no group is created: what needs the
// kernel returns an error matching ErrNotSupported, which is
// sandbox.ErrNotSupported. The stubs are generated (zstubs_other.go, by
// internal/stubgen); this file holds what they call.

// notSupported is the error of every function and method that needs Linux.
func notSupported(op string) error { return unsupported.New("cgroup: "+op, nil) }

// hostFacts ends Config.Validate once the checks that need no host have
// passed.
func hostFacts(string) (facts, error) { return facts{}, notSupported("Config.Validate") }
