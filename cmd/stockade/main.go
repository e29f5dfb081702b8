// Command stockade runs a command in a sandbox from the shell, over the same
// API that Go programs embed (package sandbox), with flags named as bwrap
// and nsjail users expect:
//
//	stockade run [flags] [--] COMMAND [ARG...]
//	stockade probe [--json]
//	stockade image ls|import|save|export|rm ...
//	stockade version
//	stockade [--root DIR] create|start|state|kill|delete|exec|ps|features|spec ...
//
// The last line is an OCI runtime with runc's command line, for containerd's
// runc shim and ctr (see runtime.go).
//
// "stockade run" exits with the command's status, or 128 plus the signal
// that killed it (137 when the sandbox was killed for its time or another
// limit). Its own failures use the statuses that shells and container
// runtimes use: 2 for a bad flag (named in the message), 125 when the
// sandbox could not be set up, 126 when the command could not be executed
// and 127 when it was not found. "stockade help run" lists the flags, with
// examples.
//
// The binary is also the sandbox's init stage: the sandbox package
// re-executes it inside every sandbox and takes over before main runs, so
// every package it links that initialises before package sandbox is paid on
// every start. The flag parser is spf13/pflag, whose initialisation costs
// next to nothing; keep it that way.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// The exit statuses of stockade's own failures. A command that ran exits
// with its own status.
const (
	exitUsage    = 2   // a bad flag or argument
	exitSetup    = 125 // the sandbox could not be set up
	exitNoExec   = 126 // the command was found but could not be executed
	exitNotFound = 127 // the command was not found inside the sandbox
)

func main() {
	os.Exit(run(os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr}))
}

// stdio holds the standard streams of a command line: the process's own,
// which the sandboxed command inherits as they are, or a test's.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

const mainUsage = `stockade runs a command in a sandbox: new namespaces, a read-only root
it cannot escape, no network, no capabilities, a seccomp filter.

Usage:
  stockade run [flags] [--] COMMAND [ARG...]   run a command in a sandbox
  stockade probe [--json]                      show what this host supports
  stockade image ls|import|save|export|rm ...  manage the image store
  stockade version                             show the version
  stockade create|start|state|kill|delete|exec|ps|features|spec ...
                                               an OCI runtime, as runc

Run 'stockade run --help' for the flags and examples.
`

// run runs the stockade command line args and returns its exit status.
func run(args []string, io stdio) int {
	if len(args) == 0 {
		fmt.Fprint(io.err, mainUsage)
		return exitUsage
	}
	if isRuntimeCommand(args) {
		return runtimeCommand(args, io) // the OCI runtime: runtime.go
	}
	var err error
	status := 0
	name := "stockade " + args[0]
	switch args[0] {
	case "run":
		status, err = runCommand(args[1:], io)
	case "probe":
		status, err = probeCommand(args[1:], io)
	case "image":
		status, err = imageCommand(args[1:], io)
	case "version":
		if len(args) > 1 {
			err = usagef("version takes no arguments")
			break
		}
		fmt.Fprintln(io.out, version())
	case "help", "-h", "--help":
		if len(args) > 1 && (args[1] == "run" || args[1] == "probe" || args[1] == "image") {
			return run([]string{args[1], "--help"}, io)
		}
		fmt.Fprint(io.out, mainUsage)
	default:
		err = usagef("unknown command %q", args[0])
		name = "stockade"
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintf(io.err, "%s: %v\nRun '%s --help' for usage.\n", name, err, name)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(io.err, "%s: %s\n", name, strings.TrimPrefix(err.Error(), "stockade: "))
		if status == 0 {
			status = 1
		}
	}
	return status
}

// version describes this build: the module version, the VCS revision when
// the build recorded one, and the Go release.
func version() string {
	v, rev := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "+dirty"
		}
	}
	s := "stockade " + v
	if rev != "" {
		s += " (" + rev + ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
