//go:build linux

package sandbox

import "github.com/stockade/stockade/internal/initproc"

// init runs the sandbox's init stage when this process is one: this same
// binary, started again from /proc/self/exe with the marker initproc.Arg0
// as argv[0]. It must be recognised before the program's
// main, or even its main package's init functions, can run: a copy of the
// program that ran its main inside a sandbox would be a second, unconfined
// instance of it. A package is initialised after every package it imports
// and before the main package, so this is the earliest point a library can
// take over. Packages this package does not depend on may still be
// initialised first (Go initialises the packages in the order of their
// import paths, each once its imports are); keep their init functions free
// of side effects. initproc.Main never returns.
func init() {
	if initproc.IsInit() {
		initproc.Main() // never returns
	}
}
