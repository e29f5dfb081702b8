//go:build linux

package sandbox

import (
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// KernelLimits bound what the sandbox may hold of the objects the kernel
// counts per user of a user namespace: inotify instances and watches,
// namespaces, queued signals. The sandbox's user namespace is its own, so
// these counts start at zero for every sandbox; they are set, before any
// process of the sandbox drops its capabilities, in the namespace's
// /proc/sys/user files and as the rlimits of its processes, which the
// sandbox cannot raise again. Each applies per user inside (the command's
// user, and root inside for what Exec runs as root).
//
// The kernel also counts all that a sandbox holds, up the chain, against
// the user that owns its namespace in the host's: for host root's
// sandboxes a host id of the sandbox's own, never host root (see
// Config.IDMap), and for an ordinary user that user. The host's per-user
// limits (fs.inotify.max_user_instances and the others under
// /proc/sys/user, the caller's RLIMIT_SIGPENDING) thus still bound a
// sandbox as a whole, and a field here cannot raise a limit above them.
//
// Zero fields take the defaults below (Namespaces has none); Unlimited
// leaves a count bounded by the host's limits alone. A limit that is not
// below the host's own for a user is not written (and the sandbox's file
// reads the kernel's default for a new namespace, 2147483647): the host's
// binds the sandbox as it is.
type KernelLimits struct {
	// InotifyInstances is the most inotify instances (inotify_init) a
	// user of the sandbox may hold, /proc/sys/user/max_inotify_instances
	// inside. Zero means DefaultInotifyInstances.
	InotifyInstances int64
	// InotifyWatches is the most inotify watches a user of the sandbox
	// may hold, /proc/sys/user/max_inotify_watches inside. Zero means
	// DefaultInotifyWatches.
	InotifyWatches int64
	// Namespaces, if positive, is the most namespaces of each kind a user
	// of the sandbox may create (the max_*_namespaces files inside), where
	// the seccomp policy lets it create any (the default policy does not).
	// Zero leaves the host's per-user limits, which count the sandbox's
	// namespaces against its own owner id: writing the eight files would
	// cost some 0.4 ms a start.
	Namespaces int64
	// SignalsPending is the most signals queued for a user of the
	// sandbox at once (RLIMIT_SIGPENDING): sigqueue and kill beyond it
	// fail with EAGAIN, and so does timer_create. Zero means
	// DefaultSignalsPending.
	SignalsPending int64
}

// The defaults of KernelLimits: the kernel's own for a user of the host,
// where it has fixed ones, and, for what it scales with the host's memory,
// a few times what a busy interactive user holds.
const (
	DefaultInotifyInstances = 128
	DefaultInotifyWatches   = 8192
	DefaultSignalsPending   = 1024
)

// namespaceKinds are the namespaces that /proc/sys/user counts.
var namespaceKinds = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}

func (k *KernelLimits) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"InotifyInstances", k.InotifyInstances},
		{"InotifyWatches", k.InotifyWatches},
		{"Namespaces", k.Namespaces},
		{"SignalsPending", k.SignalsPending},
	} {
		if f.v < Unlimited || f.v > math.MaxInt32 {
			return configErr("Limits.Kernel."+f.name, "must be from 0 to %d, or Unlimited, not %d", math.MaxInt32, f.v)
		}
	}
	return nil
}

// sysctls returns the values of the sandbox's /proc/sys/user files, by
// file name. A value that is not below the caller's own namespace's is
// left out: the kernel counts the sandbox against that limit too (for its
// owner id), so writing it would bind nothing, and each file costs the
// start some 50 µs.
func (k *KernelLimits) sysctls() []proto.Sysctl {
	var out []proto.Sysctl
	add := func(name string, v, def int64) {
		switch {
		case v == 0:
			v = def
		case v == Unlimited:
			return
		}
		if host, ok := hostUserLimit(name); ok && v >= host {
			return
		}
		out = append(out, proto.Sysctl{Name: name, Value: strconv.FormatInt(v, 10)})
	}
	add("max_inotify_instances", k.InotifyInstances, DefaultInotifyInstances)
	add("max_inotify_watches", k.InotifyWatches, DefaultInotifyWatches)
	if k.Namespaces > 0 {
		for _, kind := range namespaceKinds {
			add("max_"+kind+"_namespaces", k.Namespaces, 0)
		}
	}
	return out
}

// rlimits returns the rlimits of KernelLimits. The default is lowered to
// the caller's hard limit should that be lower; Unlimited leaves the
// caller's limit.
func (k *KernelLimits) rlimits() []proto.Rlimit {
	v := uint64(k.SignalsPending)
	switch k.SignalsPending {
	case Unlimited:
		return nil
	case 0:
		v = min(DefaultSignalsPending, callerSigPending())
	}
	return []proto.Rlimit{{Resource: unix.RLIMIT_SIGPENDING, Cur: v, Max: v}}
}

// callerSigPending is the caller's hard RLIMIT_SIGPENDING, read once.
var callerSigPending = sync.OnceValue(func() uint64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_SIGPENDING, &r); err != nil {
		return unix.RLIM_INFINITY
	}
	return r.Max
})

// hostUserLimits caches the caller's values of /proc/sys/user, which
// change seldom: read once per process.
var hostUserLimits struct {
	sync.Mutex
	m map[string]int64
}

// hostUserLimit returns the value of /proc/sys/user/NAME in the caller's
// user namespace, and whether it could be read.
func hostUserLimit(name string) (int64, bool) {
	hostUserLimits.Lock()
	defer hostUserLimits.Unlock()
	if v, ok := hostUserLimits.m[name]; ok {
		return v, v >= 0
	}
	v := int64(-1)
	if b, err := os.ReadFile("/proc/sys/user/" + name); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			v = n
		}
	}
	if hostUserLimits.m == nil {
		hostUserLimits.m = map[string]int64{}
	}
	hostUserLimits.m[name] = v
	return v, v >= 0
}
