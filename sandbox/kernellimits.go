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

// KernelLimits cap per-user kernel counts inside; Unlimited: the host's.
type KernelLimits struct {
	InotifyInstances int64 // max_inotify_instances; zero: DefaultInotifyInstances
	InotifyWatches   int64 // max_inotify_watches; zero: DefaultInotifyWatches
	Namespaces       int64 // each max_*_namespaces if positive; zero leaves them (cheaper)
	SignalsPending   int64 // RLIMIT_SIGPENDING, also timer_create; zero: DefaultSignalsPending
}

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
