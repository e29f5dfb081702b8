package sandbox

import "github.com/stockade/stockade/internal/initproc"

// The sandbox's init stage is this same binary, started again with a marker
// in argv[0]. It must be recognised before the program's main, or even its
// main package's init functions, can run: a copy of the program that ran
// its main inside a sandbox would be a second, unconfined instance of it.
// Package initialisation of this package runs after that of every package
// it imports and before that of the main package, so this is the earliest
// point a library can take over. Packages that neither this package nor the
// main package import, and that sort before it, still run their init
// functions first; keep those free of side effects.
func init() {
	if initproc.IsInit() {
		initproc.Main() // never returns
	}
}
