//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/initproc"
	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/seccomp"
)

// HostReport is what Probe found, feature by feature.
type HostReport struct {
	Kernel         string  `json:"kernel"`
	UID            int     `json:"uid"`
	Root           bool    `json:"root"`
	InitialUserNS  bool    `json:"initialUserNS"` // not in a container
	Sandbox        Support `json:"sandbox"`       // a default sandbox runs
	UserNamespaces Support `json:"userNamespaces"`
	SubordinateIDs Support `json:"subordinateIDs"`
	CgroupMode     string  `json:"cgroupMode"`
	Cgroups        Support `json:"cgroups"`
	Landlock       Support `json:"landlock"`
	LandlockABI    int     `json:"landlockABI"`
	Seccomp        Support `json:"seccomp"`
	Pidfd          Support `json:"pidfd"`
	MemoryPeak     Support `json:"memoryPeak"`
	Overlayfs      Support `json:"overlayfs"` // a plain overlay in a user namespace
	Overlay        Support `json:"overlay"`   // Config.Overlay starts, on tmpfs or in a directory
	RawStart       Support `json:"rawStart"`  // not the init stage
	TimeNamespaces Support `json:"timeNamespaces"`
}

// Support says whether a feature is there and, in Detail, what or why not.
type Support struct {
	Available bool   `json:"available"`
	Detail    string `json:"detail,omitempty"`
}

func yes(format string, args ...any) Support {
	return Support{Available: true, Detail: fmt.Sprintf(format, args...)}
}

func no(format string, args ...any) Support {
	return Support{Detail: fmt.Sprintf(format, args...)}
}

func fromErr(err error, ok string) Support {
	if err != nil {
		return Support{Detail: err.Error()}
	}
	return Support{Available: true, Detail: ok}
}

// Probe reports what this host offers this caller, and why a feature is off.
func Probe() *HostReport {
	r := &HostReport{UID: os.Geteuid()}
	r.Root = r.UID == 0
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		r.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		r.InitialUserNS = strings.Join(strings.Fields(string(b)), " ") == "0 0 4294967295"
	}
	r.UserNamespaces = probeUserNS(r.Root)
	r.SubordinateIDs = probeSubIDs(r.Root)
	r.CgroupMode = cgroup.DetectMode().String()
	r.Cgroups = probeCgroups()
	r.LandlockABI, r.Landlock = probeLandlock()
	r.Seccomp = fromErr(seccomp.Supported(), "filters with kill-process, errno and allow actions")
	r.Pidfd = probePidfd()
	r.MemoryPeak = fromErr(cgroup.MemoryPeak(), "memory.peak in every group")
	r.Overlayfs = probeOverlay(r.Root)
	r.RawStart = probeRawStart()
	r.Sandbox = probeSandbox()
	r.TimeNamespaces = probeTimeNS(r.Sandbox.Available)
	r.Overlay = probeOverlayRoot(r.Sandbox.Available, r.Overlayfs.Available)
	return r
}

// probeUserNS starts this binary in a new user namespace as an init stage
// without its socket, which exits at once: the clone is the test.
func probeUserNS(root bool) Support {
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{initproc.Arg0},
		Env:         []string{"GOMAXPROCS=1"},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: unix.SIGKILL},
	}
	err := cmd.Start()
	if err != nil {
		if fe := startError(cmd.Path, err); errors.Is(fe, ErrNotSupported) {
			return Support{Detail: fe.Error()}
		}
		return no("creating one failed: %v", err)
	}
	cmd.Wait()
	// The clone worked; a host may still deny capabilities inside.
	if err := readUserNSSettings().diagnose(root, 0); err != nil {
		return Support{Detail: err.Error()}
	}
	if root {
		return yes("host root: the sandbox maps its ids onto an unprivileged range")
	}
	return yes("ordinary user: the caller's own ids, or subordinate ids with SubordinateIDs")
}

func probeSubIDs(root bool) Support {
	if root {
		m := rootIDMap()
		return yes("host root maps onto host ids %d to %d", m.HostUID, uint64(m.HostUID)+uint64(m.Size)-1)
	}
	s, err := callerSubIDs()
	if err != nil {
		return Support{Detail: err.Error()}
	}
	return yes("uids %d and gids %d, %d of each, through %s and %s", s.uid, s.gid, s.size, s.newuidmap, s.newgidmap)
}

func probeCgroups() Support {
	d, err := cgroup.CheckDelegation("")
	if err != nil {
		return no("%v", err)
	}
	if !d.Writable {
		return no("%s", d.Reason)
	}
	detail := "controllers: " + strings.Join(d.Controllers, " ")
	if d.Reason != "" {
		detail += "; " + d.Reason
	}
	return Support{Available: true, Detail: detail}
}

func probeLandlock() (int, Support) {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch errno {
	case 0:
		return int(abi), yes("ABI %d", abi)
	case unix.ENOSYS:
		return 0, no("this kernel has no Landlock (Linux 5.13 with CONFIG_SECURITY_LANDLOCK)")
	case unix.EOPNOTSUPP:
		return 0, no("Landlock is built in but not enabled: add landlock to the lsm= kernel parameter")
	}
	return 0, no("landlock_create_ruleset: %v", errno)
}

func probePidfd() Support {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return no("this kernel has no pidfd_open (Linux 5.3)")
		}
		return no("pidfd_open: %v", err)
	}
	unix.Close(fd)
	return yes("pidfd_open")
}

// probeOverlay looks for overlayfs among the kernel's file systems or its
// modules. An ordinary user may mount it in a user namespace from Linux
// 5.11.
func probeOverlay(root bool) Support {
	b, _ := os.ReadFile("/proc/filesystems")
	have := strings.Contains(string(b), "\toverlay\n")
	how := "registered"
	if !have {
		var uts unix.Utsname
		unix.Uname(&uts)
		mods, _ := filepath.Glob(filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]), "kernel/fs/overlayfs/overlay.ko*"))
		have, how = len(mods) > 0, "a module, loaded on first use"
	}
	switch {
	case !have:
		return no("the kernel has no overlay file system (CONFIG_OVERLAY_FS)")
	case !root && !linux.KernelAtLeast(5, 11):
		return no("an ordinary user may mount overlayfs in a user namespace from Linux 5.11")
	case !root:
		return yes("%s; in a user namespace, with userxattr", how)
	}
	return yes("%s", how)
}

// probeOverlayRoot starts a long-lived sandbox over a layer of its own,
// with the upper layer on tmpfs and then in a directory, and closes it.
func probeOverlayRoot(sandbox, overlayfs bool) Support {
	switch {
	case !sandbox:
		return no("no sandbox starts here")
	case !overlayfs:
		return no("no overlayfs")
	}
	layer, err := os.MkdirTemp("", "stockade-probe-layer-")
	if err != nil {
		return no("%v", err)
	}
	defer os.RemoveAll(layer)
	upper, err := os.MkdirTemp("", "stockade-probe-upper-")
	if err != nil {
		return no("%v", err)
	}
	defer os.RemoveAll(upper)
	for _, d := range []string{"proc", "dev", "tmp"} {
		if err := os.Mkdir(filepath.Join(layer, d), 0o755); err != nil {
			return no("%v", err)
		}
	}
	if err := os.Chmod(layer, 0o755); err != nil {
		return no("%v", err)
	}
	try := func(o *Overlay) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sb := New(Config{Overlay: o})
		err := sb.Start(ctx)
		sb.Close()
		return err
	}
	how := "the caller's own ids"
	if os.Geteuid() == 0 {
		how = "idmapped layers"
	}
	tmpfsErr := try(&Overlay{Layers: []string{layer}})
	dirErr := try(&Overlay{Layers: []string{layer}, Dir: upper})
	switch {
	case tmpfsErr == nil && dirErr == nil:
		return yes("%s; the upper layer on tmpfs or in a directory", how)
	case dirErr == nil:
		return yes("%s; the upper layer in a directory (Overlay.Dir) only: on tmpfs, %v", how, tmpfsErr)
	case tmpfsErr == nil:
		return yes("%s; the upper layer on tmpfs only: in %s, %v", how, os.TempDir(), dirErr)
	}
	return no("%v", tmpfsErr)
}

// probeTimeNS runs true in a sandbox with a time namespace, once the
// default sandbox has worked: kernels differ in whether they let the init
// start a command in one.
func probeTimeNS(sandboxOK bool) Support {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		return no("this kernel has no time namespaces (Linux 5.6 with CONFIG_TIME_NS)")
	}
	if !sandboxOK {
		return no("present, but no sandbox starts here to try one")
	}
	if err := runTrue(Config{TimeNamespace: true}); err != nil {
		return no("%v", err)
	}
	return yes("a sandbox with one ran true")
}

// probeSandbox runs true in a default sandbox.
func probeSandbox() Support {
	start := time.Now()
	if err := runTrue(Config{}); err != nil {
		return no("%v", err)
	}
	return yes("a default sandbox ran true in %v", time.Since(start).Round(10*time.Microsecond))
}

// runTrue runs true in the sandbox cfg describes.
func runTrue(cfg Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.Args = []string{"true"}
	_, err := New(cfg).Run(ctx)
	return err
}

// String writes the report as a table, one feature a line.
func (r *HostReport) String() string {
	var b strings.Builder
	who := "an ordinary user"
	if r.Root {
		who = "host root"
	}
	if !r.InitialUserNS {
		who += ", in a user namespace of a container"
	}
	fmt.Fprintf(&b, "Linux %s, uid %d (%s), cgroups %s\n", r.Kernel, r.UID, who, r.CgroupMode)
	for _, f := range []struct {
		name string
		s    Support
	}{
		{"sandbox", r.Sandbox},
		{"user namespaces", r.UserNamespaces},
		{"subordinate ids", r.SubordinateIDs},
		{"cgroups", r.Cgroups},
		{"landlock", r.Landlock},
		{"seccomp", r.Seccomp},
		{"pidfd", r.Pidfd},
		{"memory.peak", r.MemoryPeak},
		{"overlayfs", r.Overlayfs},
		{"overlay root", r.Overlay},
		{"raw start path", r.RawStart},
		{"time namespaces", r.TimeNamespaces},
	} {
		mark := "no "
		if f.s.Available {
			mark = "yes"
		}
		fmt.Fprintf(&b, "  %-16s %s  %s\n", f.name, mark, f.s.Detail)
	}
	return b.String()
}
