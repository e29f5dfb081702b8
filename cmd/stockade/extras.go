package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stockade/stockade/sandbox"
)

// addData is --file and --bind-data: it reads descriptor fd to its end
// into a file of a private host directory (mode 0700, removed at the end
// of the run) and binds that file at dst, writable or read-only. The
// sandbox's Mounts take host paths only, so the copy lives on the host;
// its mode is 0666 for --file, so that the command's user can write it
// whatever host id it maps onto, and 0644 for --bind-data.
func (o *runOptions) addData(flag, fdArg, dst string, writable bool) error {
	fd, err := strconv.Atoi(fdArg)
	if err != nil || fd < 0 {
		return fmt.Errorf("FD: %q is not a descriptor number", fdArg)
	}
	src, err := dupFD(fd)
	if err != nil {
		return fmt.Errorf("FD %d: %w", fd, err)
	}
	data, err := io.ReadAll(src)
	src.Close()
	if err != nil {
		return fmt.Errorf("FD %d: %w", fd, err)
	}
	dir, err := os.MkdirTemp("", "stockade-data-")
	if err != nil {
		return err
	}
	o.cleanups = append(o.cleanups, func() { os.RemoveAll(dir) })
	mode := os.FileMode(0o644)
	if writable {
		mode = 0o666
	}
	name := filepath.Join(dir, "data")
	if err := os.WriteFile(name, data, mode); err != nil {
		return err
	}
	// WriteFile's mode is masked by the umask; the copy's is not.
	if err := os.Chmod(name, mode); err != nil {
		return err
	}
	o.cfg.Mounts = append(o.cfg.Mounts, sandbox.Mount{Kind: sandbox.Bind, Source: name, Target: dst, Writable: writable})
	o.mountFlags = append(o.mountFlags, flag+" "+fdArg+" "+dst)
	return nil
}

// cleanup removes what the flags left on the host.
func (o *runOptions) cleanup() {
	for _, f := range o.cleanups {
		f()
	}
	o.cleanups = nil
}

// capName writes a capability as sandbox.Security names them: CAP_ and
// upper case, so that "net_bind_service" and "CAP_NET_BIND_SERVICE" are
// one name, as they are to bwrap and docker.
func capName(s string) string {
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "CAP_") {
		s = "CAP_" + s
	}
	return s
}

// jsonValue is the flag --json[=FILE|fd:N]. It extends what was a
// boolean flag, and still is one to pflag (Type "bool", NoOptDefVal
// "true"): --json and --json=true write to stderr, --json=false not at all.
type jsonValue struct{ o *runOptions }

func (v jsonValue) Set(s string) error {
	switch s {
	case "":
		return fmt.Errorf("want FILE or fd:N")
	case "true":
		s = "fd:2"
	case "false":
		v.o.json, v.o.jsonTo = false, ""
		return nil
	}
	if n, ok := strings.CutPrefix(s, "fd:"); ok {
		if fd, err := strconv.Atoi(n); err != nil || fd < 0 {
			return fmt.Errorf("%q is not a descriptor number", n)
		}
	}
	v.o.json, v.o.jsonTo = true, s
	return nil
}

// Type is "bool" so that the help shows "--json" alone; the usage text
// tells of =FILE and =fd:N.
func (v jsonValue) Type() string { return "bool" }

func (v jsonValue) String() string {
	if v.o == nil {
		return ""
	}
	return v.o.jsonTo
}

// openJSON opens where --json writes, before the sandbox starts, so that
// a bad file or descriptor is a usage error with nothing started: fd:1 and
// fd:2 are stockade's standard output and error; any other fd:N is a copy
// of descriptor N; anything else is a file, created or truncated. The
// returned function closes it.
func (o *runOptions) openJSON(std stdio) (func(), error) {
	switch o.jsonTo {
	case "", "fd:2":
		o.jsonW = std.err
		return func() {}, nil
	case "fd:1":
		o.jsonW = std.out
		return func() {}, nil
	}
	var f *os.File
	var err error
	if n, ok := strings.CutPrefix(o.jsonTo, "fd:"); ok {
		fd, _ := strconv.Atoi(n) // checked by jsonValue.Set
		f, err = dupFD(fd)
	} else {
		f, err = os.OpenFile(o.jsonTo, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	}
	if err != nil {
		return func() {}, usagef("--json: %v", err)
	}
	o.jsonW = f
	return func() { f.Close() }, nil
}
