//go:build linux

package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/stockade/stockade/sandbox"
)

// ttyOutputWait bounds how long "stockade run -t" copies the terminal's
// output after the command has ended: the master reads its end as soon as
// the last process holding the terminal is gone, which the end of the
// sandbox makes at once; the bound is for a writer that blocks.
const ttyOutputWait = 2 * time.Second

// runTTY is "stockade run -t": the command gets a terminal of the
// sandbox's own (sandbox.Config.TTY) of the size of stockade's, which is
// put in raw mode so that every key, Ctrl-C and Ctrl-Z included, reaches
// the sandbox's terminal, whose line discipline turns them into signals
// for the command's foreground job. The caller's terminal is restored on
// every way out: the command's end, a failed start, a signal to stockade
// (passed on to the command, whose end follows), a panic.
func (o *runOptions) runTTY(cfg sandbox.Config, std stdio) (int, error) {
	in, ok := std.in.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return exitUsage, usagef("--tty (or a bundle's process.terminal): standard input is not a terminal")
	}
	fd := int(in.Fd())
	tty := &sandbox.TTY{}
	if cols, rows, err := term.GetSize(fd); err == nil {
		tty.Rows, tty.Cols = uint16(rows), uint16(cols)
	}
	cfg.TTY = tty
	cfg.Stdin, cfg.Stdout, cfg.Stderr = nil, nil, nil
	if !hasEnv(cfg.Env, "TERM") {
		// As docker run -t does: a name every terminal program knows, and
		// nothing read from stockade's own environment.
		cfg.Env = append(cfg.Env, "TERM=xterm")
	}

	// Catch the signals before the command starts, as runCommand does.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)

	sb := sandbox.New(cfg)
	if err := sb.Start(context.Background()); err != nil {
		return o.startFailed(err, std)
	}
	defer sb.Close()
	old, err := term.MakeRaw(fd)
	if err != nil {
		sb.Kill(unix.SIGKILL)
		sb.Wait()
		return exitSetup, err
	}
	restored := false
	restore := func() {
		if !restored {
			term.Restore(fd, old)
			restored = true
		}
	}
	defer restore()

	master := sb.Terminal()
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		io.Copy(std.out, master) // to its end: EIO once the command is gone
	}()
	// Not waited for, as os/exec does not wait for a reader that may block
	// forever: the keys go to the sandbox's terminal until it is closed.
	go io.Copy(master, in)

	stop := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				sb.Kill(sig.(syscall.Signal))
			case <-winch:
				if cols, rows, err := term.GetSize(fd); err == nil {
					sb.Resize(uint16(rows), uint16(cols))
				}
			case <-stop:
				return
			}
		}
	}()
	res, err := sb.Wait()
	close(stop)
	select {
	case <-outDone:
	case <-time.After(ttyOutputWait):
	}
	restore()
	if res == nil {
		return o.startFailed(err, std)
	}
	status := exitStatus(res)
	o.report(std, res, status)
	return status, nil
}

// hasEnv reports whether env sets key.
func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}
