package main

import (
	"fmt"

	"github.com/stockade/stockade/sandbox"
)

const probeHelp = `Usage: stockade probe [--json]

Shows what this host offers a sandbox started by this user: user
namespaces, subordinate ids, cgroups for limits, Landlock, seccomp, pidfd,
memory.peak, overlayfs, time namespaces, and whether a default sandbox
starts at all, with the reason and the remedy for each feature that is off.
It starts a few short-lived sandboxes to find out. Exits with status 1 when
a default sandbox cannot start here.

Flags:
%s`

// probeCommand is "stockade probe".
func probeCommand(args []string, io stdio) (int, error) {
	p := newParser("probe")
	asJSON := p.fs.Bool("json", false, "print the report as one JSON object")
	help := p.fs.BoolP("help", "h", false, "show this help")
	rest, err := p.parse(args)
	if err != nil {
		return exitUsage, err
	}
	if *help {
		fmt.Fprintf(io.out, probeHelp, p.fs.FlagUsagesWrapped(100))
		return 0, nil
	}
	if len(rest) > 0 {
		return exitUsage, usagef("unexpected argument %q", rest[0])
	}
	r := sandbox.Probe()
	if *asJSON {
		writeJSON(io.out, r)
	} else {
		fmt.Fprint(io.out, r)
	}
	if !r.Sandbox.Available {
		return 1, nil
	}
	return 0, nil
}
