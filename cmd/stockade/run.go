package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/stockade/stockade/sandbox"
)

const runHelp = `Usage: stockade run [flags] [--] COMMAND [ARG...]
       stockade run --bundle DIR [flags] [[--] COMMAND [ARG...]]

Runs COMMAND in a new sandbox and exits with its status, or 128 plus the
signal that killed it (137 when the sandbox was killed for its time limit or
another limit). By default the sandbox has new user, pid, mount, uts, ipc,
network and cgroup namespaces; a read-only view of the host's /usr, /bin,
/sbin and /lib*, a generated /etc, a private /proc, a minimal /dev and empty
tmpfs /tmp and /work; only loopback; no capabilities; no_new_privs; the
default seccomp filter; uid 1000; and an environment of PATH, HOME, USER and
LOGNAME only. COMMAND is looked up in the sandbox's PATH. Signals that
stockade receives (INT, TERM, HUP, QUIT, USR1, USR2) are passed to COMMAND.

Flags:
%s
Examples:
  # A shell's view of the default sandbox:
  stockade run -- /bin/sh -c 'id; ls /; cat /proc/self/uid_map'

  # An interactive shell on a terminal of the sandbox's own (Ctrl-C and
  # Ctrl-Z reach the shell's jobs; the terminal is restored at the end):
  stockade run -t -- /bin/sh

  # Run in a busybox root, as 'bwrap --ro-bind ROOT / --proc /proc --dev /dev':
  stockade run --rootfs ./rootfs -- /bin/sh -c 'echo hello'

  # Build a checkout in place. Run by an ordinary user, the command's files
  # are the user's; host root's sandboxes map onto unprivileged host ids,
  # which must be allowed to write to ./src:
  stockade run --bind ./src /src --chdir /src -- make

  # A judge's run: 256 MiB, 2 s of CPU, 64 tasks, 1 MiB of output, 10 s in
  # all, and the verdict as JSON on stderr:
  stockade run --memory 256m --cpu-time 2s --pids 64 --output-limit 1m \
      --time-limit 10s --ro-bind ./solution /work/solution --json -- /work/solution

  # As bwrap takes files from descriptors: app.conf read-only at
  # /etc/app.conf; the verdict as JSON on descriptor 4, apart from the
  # command's stderr:
  stockade run --bind-data 3 /etc/app.conf --json=fd:4 -- cat /etc/app.conf \
      3<app.conf 4>result.json

  # An OCI image saved with 'docker save' elsewhere: imported into the image
  # store (see 'stockade image --help'), run as root inside with a writable
  # root, and what the command changed saved as a new image:
  stockade run --image alpine.tar:alpine:3.19 --root --save alpine:gcc -- apk add gcc
  stockade run --image alpine:gcc -- gcc --version

  # An OCI bundle, as 'runc spec' writes it (with "terminal": false and a
  # working directory other than /), for 5 s at most:
  stockade run --bundle ./bundle --time-limit 5s

Exit statuses of stockade itself: 2 for a bad flag, 125 when the sandbox
could not be set up, 126 when COMMAND could not be executed, 127 when it
was not found.
`

// runCommand is "stockade run".
func runCommand(args []string, io stdio) (int, error) {
	var o runOptions
	p := newParser("run")
	o.define(p)
	defer o.cleanup()
	rest, err := p.parse(args)
	if err != nil {
		return exitUsage, err
	}
	if o.help {
		fmt.Fprintf(io.out, runHelp, p.fs.FlagUsagesWrapped(100))
		return 0, nil
	}
	cfg, err := o.config(rest)
	if err == nil {
		err = o.img.apply(&o, &cfg, io)
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			return exitSetup, err
		}
		return exitUsage, err
	}
	ownRootBinds(&cfg)
	closeJSON, err := o.openJSON(io)
	if err != nil {
		return exitUsage, err
	}
	defer closeJSON()
	if o.tty || cfg.TTY != nil {
		return o.runTTY(cfg, io)
	}
	cfg.Stdin, cfg.Stdout, cfg.Stderr = io.in, io.out, io.err

	// Catch the signals before the command starts, so that none arriving
	// as it starts ends stockade instead: those are passed on once it runs.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	sb := sandbox.New(cfg)
	if err := sb.Start(context.Background()); err != nil {
		return o.startFailed(err, io)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				sb.Kill(sig.(syscall.Signal))
			case <-stop:
				return
			}
		}
	}()
	res, err := sb.Wait()
	close(stop)
	if res == nil {
		return o.startFailed(err, io)
	}
	if err := o.img.afterRun(sb, &cfg, io); err != nil {
		return exitSetup, err
	}
	status := exitStatus(res)
	o.report(io, res, status)
	return status, nil
}

// exitStatus is the status stockade exits with for a command that ran:
// its own, or 128 plus the signal that killed it.
func exitStatus(res *sandbox.Result) int {
	switch {
	case res.Signal != 0:
		return 128 + int(res.Signal)
	case res.ExitCode >= 0:
		return res.ExitCode
	}
	return exitSetup
}

// startFailed reports a sandbox that did not start: a config error names
// the flag behind the field and is a usage error; a command that cannot be
// found or executed gets 127 or 126, as in a shell; anything else 125.
func (o *runOptions) startFailed(err error, io stdio) (int, error) {
	var ce *sandbox.ConfigError
	if errors.As(err, &ce) {
		err = usagef("%s: %v", o.flagFor(ce.Field), ce.Err)
		if o.json {
			writeJSON(o.jsonOut(io), jsonResult{Error: err.Error(), ExitStatus: exitUsage})
		}
		return exitUsage, err
	}
	status := exitSetup
	var se *sandbox.SetupError
	if errors.As(err, &se) && se.Stage == "exec" {
		status = exitNoExec
		if se.Errno == syscall.ENOENT {
			status = exitNotFound
		}
	}
	// The hint is about cgroups; off Linux nothing is supported.
	if l := o.cfg.Limits; runtime.GOOS == "linux" && errors.Is(err, sandbox.ErrNotSupported) && !l.BestEffort &&
		(l.Memory != 0 || l.CPU != 0 || l.Pids != 0 || l.CPUTime != 0) {
		err = fmt.Errorf("%w\n(stockade run: a delegated cgroup is named with --cgroup-parent; best effort is --best-effort-limits)", err)
	}
	if o.json {
		writeJSON(o.jsonOut(io), jsonResult{Error: err.Error(), ExitStatus: status})
		return status, nil
	}
	return status, err
}
