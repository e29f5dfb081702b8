//go:build !linux

package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/stockade/stockade/internal/unsupported"
)

// On a system other than Linux the package keeps its whole API, so that a
// program that embeds it compiles and its other tests run there, but no
// sandbox starts: what needs the kernel returns an error matching
// ErrNotSupported (a *FeatureError). This file holds what the generated
// stubs (zstubs_other.go, written by internal/stubgen) cannot: the
// functions whose zero value would mislead, and what the shared files
// (config.go, errors.go, result.go) call.

// notSupported is the error of every function and method that needs Linux.
func notSupported(op string) error {
	return &FeatureError{Feature: op, Err: &unsupported.Error{}}
}

// New returns a sandbox for cfg. It never fails; on systems other than
// Linux, Start and Run return an error matching ErrNotSupported.
func New(cfg Config) *Sandbox { return &Sandbox{} }

// Probe reports what this host offers a sandbox: on systems other than
// Linux, nothing, and every feature says why.
func Probe() *HostReport {
	why := no("not supported: stockade needs Linux, and this is %s/%s", runtime.GOOS, runtime.GOARCH)
	r := &HostReport{UID: os.Geteuid(), CgroupMode: "unavailable"}
	r.Root = r.UID == 0
	for _, s := range []*Support{&r.Sandbox, &r.UserNamespaces, &r.SubordinateIDs, &r.Cgroups,
		&r.Landlock, &r.Seccomp, &r.Pidfd, &r.MemoryPeak, &r.Overlayfs, &r.RawStart, &r.TimeNamespaces} {
		*s = why
	}
	return r
}

// String writes the report in a line.
func (r *HostReport) String() string {
	return fmt.Sprintf("%s/%s, uid %d: sandbox no  %s\n", runtime.GOOS, runtime.GOARCH, r.UID, r.Sandbox.Detail)
}

func no(format string, args ...any) Support {
	return Support{Detail: fmt.Sprintf(format, args...)}
}

// validateNetwork ends Config.Validate once the fields that need no
// kernel have passed: the network, the security settings and the limits
// are checked against this host's kernel and cgroups, which needs Linux.
func (c *Config) validateNetwork() error { return notSupported("Config.Validate") }

func (c *Config) validateSecurity() error { return nil }

func (c *Config) validateSymlinks() error { return nil }

func (l *Limits) validate() error { return nil }

func (n *Network) clone() Network {
	d := *n
	if n.Link != nil {
		l := *n.Link
		d.Link = &l
	}
	d.Networks = slices.Clone(n.Networks)
	d.Ports = slices.Clone(n.Ports)
	d.DNS = slices.Clone(n.DNS)
	return d
}

func (s *Security) clone() Security {
	d := *s
	d.Capabilities = slices.Clone(s.Capabilities)
	d.SeccompProfile = slices.Clone(s.SeccompProfile)
	d.Landlock.WritablePaths = slices.Clone(s.Landlock.WritablePaths)
	d.Landlock.BindTCP = slices.Clone(s.Landlock.BindTCP)
	d.Landlock.ConnectTCP = slices.Clone(s.Landlock.ConnectTCP)
	if s.Seccomp != nil {
		p := *s.Seccomp
		p.Syscalls = slices.Clone(p.Syscalls)
		for i := range p.Syscalls {
			p.Syscalls[i].Names = slices.Clone(p.Syscalls[i].Names)
			p.Syscalls[i].Args = slices.Clone(p.Syscalls[i].Args)
		}
		d.Seccomp = &p
	}
	return d
}

// errnoName is the errno's number: only Linux's names are known.
func errnoName(e syscall.Errno) string { return fmt.Sprintf("errno %d", uintptr(e)) }

// signalName is the signal's name as the system spells it.
func signalName(s syscall.Signal) string {
	name := s.String()
	if !strings.HasPrefix(name, "signal ") {
		return name
	}
	return fmt.Sprintf("signal %d", int(s))
}
