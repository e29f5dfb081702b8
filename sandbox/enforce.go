//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/proto"
)

// limiter enforces a sandbox's Limits from the calling process: its control
// group, the CPU time watchdog and the output counter. A nil *limiter
// enforces nothing; every method accepts one.
type limiter struct {
	limits Limits
	group  *cgroup.Group // nil when no limit needs one
	// hit receives the first limit the sandbox exceeded; watch kills it.
	hit chan Reason
	// stop ends the CPU time watchdog.
	stop chan struct{}
	// output counts the bytes the command wrote, when Limits.Output is set.
	output *outputCounter
	// cost is the time the calling process spent on the group: create,
	// place, kill and remove.
	cost time.Duration
	// stats are the group's final figures, read once the sandbox ended.
	stats    cgroup.Stats
	statsErr error
	// rlimits and notes are what best effort applied instead of cgroup
	// limits the caller may not use (see planLimits).
	rlimits []proto.Rlimit
	notes   []string
	logger  *slog.Logger
	// procUser and procSys are the CPU times the watchdog last counted
	// from /proc, once the group could no longer be read.
	procUser, procSys atomic.Int64
	// inside is read-held while a thread of this process is in the group
	// (inGroup, on cgroup v1), and held by end around the kill of every
	// process in the group, which would otherwise kill this process too.
	inside sync.RWMutex
	// tasks are the group's tasks files on cgroup v1, for the raw path
	// (see tasksFiles); closed by end.
	tasksMu     sync.Mutex
	tasks       []*os.File
	tasksClosed bool
}

// newLimiter creates the sandbox's control group when its limits need one,
// or when host root starts a long-lived sandbox, whose Stats come from it.
// It runs before anything else of the sandbox exists, so a failure leaves
// nothing behind.
func newLimiter(cfg *Config) (*limiter, error) {
	l := &limiter{limits: cfg.Limits, hit: make(chan Reason, 1), stop: make(chan struct{}), logger: cfg.Logger}
	l.output = newOutputCounter(cfg, func() { l.trip(OutputLimit) })
	need := cfg.Limits.needsCgroup()
	gcfg := cfg.Limits.cgroupConfig()
	defaults := defaultCaps(&cfg.Limits, &gcfg)
	for _, f := range defaults.inGroup {
		need = append(need, f)
		switch f {
		case "Limits.Pids":
			l.limits.Pids = DefaultPids
		case "Limits.Memory":
			l.limits.Memory = DefaultMemory
		}
	}
	if len(need) == 0 && os.Geteuid() == 0 && cgroup.DetectMode() != cgroup.Unavailable {
		switch {
		case len(cfg.Args) == 0:
			need = []string{"Limits.CgroupParent"} // for accounting only
		case pidsBounded(cfg.Limits.CgroupParent):
			// Outside a group of its own, its tasks would count against
			// the caller's limit with no share kept for the caller.
			need = []string{"Limits.CgroupParent"}
		}
	}
	if len(need) == 0 {
		l.rlimits = defaults.rlimits
		if l.output == nil && l.rlimits == nil {
			return nil, nil
		}
		return l, nil
	}
	if os.Geteuid() != 0 {
		plan, err := cfg.Limits.plan()
		if err != nil {
			return nil, err
		}
		l.rlimits, l.notes = append(plan.rlimits, defaults.rlimits...), plan.notes
		if !plan.cgroup {
			return l, nil
		}
		gcfg.Limits = plan.limits
	} else {
		l.rlimits = defaults.rlimits
	}
	if len(gcfg.Limits.Devices) > 0 {
		gcfg.Limits.Devices = cfg.deviceRules(gcfg.Limits.Devices)
	}
	cleanupOnce(cfg.Limits.CgroupParent, cfg.Logger)
	start := time.Now()
	g, err := cgroup.Create(gcfg)
	l.cost += time.Since(start)
	if err != nil {
		// Validate has seen the limits, but the host can still refuse
		// them (a parent that gained processes, say).
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, cgroupConfigErr(err, need[0])
		}
		return nil, setupErr("cgroup", "", err)
	}
	l.group = g
	reserveOnce(cfg.Limits.CgroupParent, cfg.Logger)
	return l, nil
}

// attach prepares the init's command for the limits: on cgroup v2 the
// init is forked straight into the group (clone3 with CLONE_INTO_CGROUP,
// which Go uses whenever UseCgroupFD is set, together with the namespace
// flags).
func (l *limiter) attach(s *Sandbox) {
	if l == nil || l.group == nil {
		return
	}
	if fd, ok := l.group.FD(); ok {
		s.cmd.SysProcAttr.UseCgroupFD = true
		s.cmd.SysProcAttr.CgroupFD = fd
	}
}

// counter returns the output counter of the sandbox's command, or nil
// without Limits.Output.
func (l *limiter) counter() *outputCounter {
	if l == nil {
		return nil
	}
	return l.output
}

// spawn wraps start, which forks the init on a spawner's thread, so that
// on cgroup v1 the thread enters the group for the fork and the init
// starts inside it, as CLONE_INTO_CGROUP does on v2 (see
// cgroup.Group.EnterThread for why this beats moving the init by pid).
// The init waits for the go-ahead before it starts anything, and the
// thread leaves the group before the go-ahead is sent. A thread that
// cannot leave is ended.
func (l *limiter) spawn(s *Sandbox, start func() error) func() error {
	if l == nil || l.group == nil {
		return start
	}
	s.times.cgroup = l.cost
	if _, ok := l.group.FD(); ok {
		return start
	}
	if os.Geteuid() != 0 {
		// An ordinary user may move processes only within its delegated
		// subtree: a thread that entered the group could not go back to
		// the cgroup it came from. Place the init by pid instead.
		return func() error {
			if err := start(); err != nil {
				return err
			}
			t := time.Now()
			err := l.group.AddProc(s.cmd.Process.Pid)
			l.cost += time.Since(t)
			s.times.cgroup = l.cost
			if err != nil {
				return setupErr("cgroup", l.group.Name(), err)
			}
			return nil
		}
	}
	return l.inGroup(s, start)
}

// inGroup wraps start so that the calling (spawner's) thread is in the
// group while start forks, on cgroup v1: the child starts inside it. A
// thread that cannot leave again is ended.
func (l *limiter) inGroup(s *Sandbox, start func() error) func() error {
	return func() error {
		defer func() { s.times.cgroup = l.cost }()
		l.inside.RLock()
		defer l.inside.RUnlock()
		t := time.Now()
		leave, err := l.group.EnterThread()
		l.cost += time.Since(t)
		if err != nil {
			return setupErr("cgroup", l.group.Name(), err)
		}
		serr := start()
		t = time.Now()
		lerr := leave()
		l.cost += time.Since(t)
		if lerr != nil {
			return &taintedThread{err: errors.Join(serr, setupErr("cgroup", l.group.Name(), lerr))}
		}
		return serr
	}
}

// watch starts the CPU time watchdog. cpus are the CPUs the command may
// run on (none: unknown), and init is the host pid of the sandbox's init.
func (l *limiter) watch(cpus []int, init int) {
	if l == nil || l.group == nil || l.limits.CPUTime <= 0 {
		return
	}
	n := len(cpus)
	if n == 0 {
		var set unix.CPUSet
		if unix.SchedGetaffinity(0, &set) == nil {
			n = set.Count()
		}
	}
	if l.limits.CPU > 0 {
		n = min(n, int(math.Ceil(l.limits.CPU)))
	}
	go l.watchCPU(max(n, 1), init)
}

// cpuPollFloor is the shortest wait between two polls of the CPU time
// watchdog; it bounds how far the sandbox can overshoot its limit.
// fallbackPollFloor is the same for the count from /proc, which costs a
// scan of every process and is only as fine as a clock tick.
const (
	cpuPollFloor      = 2 * time.Millisecond
	fallbackPollFloor = 10 * time.Millisecond
)

// watchCPU polls the group's CPU time until the sandbox ends or uses up
// Limits.CPUTime. A sandbox on n CPUs cannot use more than n times the
// wall time that passes, so the watchdog sleeps for what is left of the
// limit divided by n: it wakes before the limit can be reached, and polls
// often only near it.
//
// When the group can no longer be read while the sandbox runs (someone
// removed it), the watchdog goes on counting from /proc: the CPU time of
// the init and of every process below it (see treeCPUTime). It stops only
// when the sandbox ends.
func (l *limiter) watchCPU(n, init int) {
	t := time.NewTimer(0)
	defer t.Stop()
	floor := cpuPollFloor
	gone := false
	var seen time.Duration // the most the group showed, a lower bound
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		var used time.Duration
		var err error
		if !gone {
			used, err = l.group.CPUTime()
			if err == nil {
				seen = used
			} else {
				select {
				case <-l.stop:
					return // the sandbox ended, and the group with it
				default:
				}
				gone, floor = true, fallbackPollFloor
				if l.logger != nil {
					l.logger.Warn("sandbox cgroup: CPU time unreadable, counting it from /proc instead", "group", l.group.Name(), "err", err)
				}
			}
		}
		if gone {
			user, sys, err := treeCPUTime(init)
			if err != nil {
				return // the init is gone: the sandbox is ending
			}
			l.procUser.Store(int64(user))
			l.procSys.Store(int64(sys))
			used = max(user+sys, seen)
		}
		left := l.limits.CPUTime - used
		if left <= 0 {
			l.trip(CPUTimeLimit)
			return
		}
		t.Reset(max(left/time.Duration(n), floor))
	}
}

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every architecture Linux runs Go on.
const userHZ = 100

// treeCPUTime returns the user and system CPU time of the process root
// and of every process below it, read from /proc: each one's own, and
// that of the children it waited for (utime, stime, cutime and cstime in
// /proc/PID/stat). It is as fine as a clock tick (10 ms) per process, and
// misses only processes that have exited and not yet been waited for by
// a parent in the tree.
func treeCPUTime(root int) (user, sys time.Duration, err error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	type proc struct{ ppid, user, sys int64 }
	procs := map[int64]proc{}
	for _, e := range entries {
		pid, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it exited meanwhile
		}
		ppid, user, sys, ok := parseStat(b)
		if ok {
			procs[pid] = proc{ppid, user, sys}
		}
	}
	if _, ok := procs[int64(root)]; !ok {
		return 0, 0, fmt.Errorf("process %d is gone", root)
	}
	children := map[int64][]int64{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var u, s int64
	queue := []int64{int64(root)}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		u += procs[pid].user
		s += procs[pid].sys
		queue = append(queue, children[pid]...)
	}
	tick := time.Second / userHZ
	return time.Duration(u) * tick, time.Duration(s) * tick, nil
}

// parseStat returns the parent pid and the user and system CPU time in
// ticks (its own and its waited-for children's) from the text of
// /proc/PID/stat.
func parseStat(b []byte) (ppid, user, sys int64, ok bool) {
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is the state (field 3); ppid is field 4, utime to cstime 14-17.
	if len(f) < 15 {
		return 0, 0, 0, false
	}
	var v [5]int64 // ppid, utime, stime, cutime, cstime
	for i, s := range []string{f[1], f[11], f[12], f[13], f[14]} {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, 0, false
		}
		v[i] = n
	}
	return v[0], v[1] + v[3], v[2] + v[4], true
}

// trip reports that the sandbox exceeded a limit; the first report wins.
func (l *limiter) trip(r Reason) {
	select {
	case l.hit <- r:
	default:
	}
}

// exceeded returns the channel on which watch learns that a limit was
// exceeded; nil, which never delivers, without limits.
func (l *limiter) exceeded() <-chan Reason {
	if l == nil {
		return nil
	}
	return l.hit
}

// end stops the watchdog and, once the init has been reaped, kills
// whatever is left in the group, reads its final figures and removes it.
// It reports a group that could not be removed through logger.
func (l *limiter) end(s *Sandbox) {
	if l == nil {
		return
	}
	select {
	case <-l.stop:
		return // ended already
	default:
		close(l.stop)
	}
	if l.group == nil {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No raw child starts in the group from here on.
	l.tasksMu.Lock()
	for _, f := range l.tasks {
		f.Close()
	}
	l.tasksClosed = true
	l.tasksMu.Unlock()
	// Wait for a thread of ours to leave the group (a frozen group holds
	// it until thawed) before the kill.
	for !l.inside.TryLock() {
		l.thaw(s.cfg.Logger)
		select {
		case <-ctx.Done():
			if logger := s.cfg.Logger; logger != nil {
				logger.Warn("sandbox cgroup: a thread of this process is still in the group: its processes are not killed", "group", l.group.Name())
			}
			return
		case <-time.After(time.Millisecond):
		}
	}
	defer l.inside.Unlock()
	kerr := l.group.Kill(ctx)
	l.stats, l.statsErr = l.group.Stats()
	rerr := l.group.Remove()
	l.cost += time.Since(start)
	s.times.cgroup = l.cost
	if logger := s.cfg.Logger; logger != nil {
		if kerr != nil {
			logger.Warn("sandbox cgroup: kill what is left", "group", l.group.Name(), "err", kerr)
		}
		if rerr != nil {
			logger.Warn("sandbox cgroup: remove", "group", l.group.Name(), "err", rerr)
		}
	}
}

// thaw thaws the sandbox's group, which someone may have frozen, after a
// SIGKILL was sent into it: a task of a frozen v1 group dies only once it
// is thawed. Killing ends the sandbox anyway, so a freeze from outside has
// nothing left to keep.
func (l *limiter) thaw(logger *slog.Logger) {
	if l == nil || l.group == nil {
		return
	}
	if err := l.group.Thaw(); err != nil && logger != nil {
		logger.Warn("sandbox cgroup: thaw to kill", "group", l.group.Name(), "err", err)
	}
}

func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// outputCounter counts the bytes of standard output and error together.
type outputCounter struct {
	limit int64
	n     atomic.Int64
	trip  func()
	// copiedOnly: the limit is the default one, which counts only what
	// the calling process copies (see Limits.Output).
	copiedOnly bool
}

// newOutputCounter returns the counter for cfg's Limits.Output that calls
// trip once the limit is passed, or nil without a limit.
func newOutputCounter(cfg *Config, trip func()) *outputCounter {
	switch {
	case cfg.Limits.Output > 0:
		return &outputCounter{limit: cfg.Limits.Output, trip: trip}
	case cfg.Limits.Output == 0 && cfg.TTY == nil:
		return &outputCounter{limit: DefaultOutput, trip: trip, copiedOnly: true}
	}
	return nil
}

// over reports whether more than the limit was written; false for nil.
func (c *outputCounter) over() bool {
	return c != nil && c.n.Load() > c.limit
}

// limitWriter passes the bytes within the limit on to w (nil: nowhere)
// and discards the rest, so that the command never blocks on output that
// no one will read; the first byte over the limit trips the counter.
type limitWriter struct {
	c *outputCounter
	w io.Writer
}

func (w *limitWriter) Write(p []byte) (int, error) {
	n := int64(len(p))
	total := w.c.n.Add(n)
	keep := min(max(w.c.limit-(total-n), 0), n)
	if keep > 0 && w.w != nil {
		if m, err := w.w.Write(p[:keep]); err != nil {
			return m, err
		}
	}
	if total > w.c.limit {
		w.c.trip()
	}
	return len(p), nil
}

// sameWriter reports whether a and b are the same writer, as os/exec
// decides it: equal interface values, where the type allows comparing.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a != nil && a == b
}

// cleaned remembers the cgroup parents whose leftovers this process has
// cleaned up, so that only the first sandbox under each pays for it.
var cleaned sync.Map // string → struct{}

// cleanupOnce removes, once per parent and process, the groups that
// sandboxes of owners that died left under parent.
func cleanupOnce(parent string, logger *slog.Logger) {
	if _, done := cleaned.LoadOrStore(parent, struct{}{}); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cgroup.Cleanup(ctx, parent); err != nil && logger != nil {
		logger.Warn("sandbox cgroup: clean up after owners that died", "parent", parent, "err", err)
	}
}

// pidsReserve is the share of the nearest pids.max above the sandboxes'
// groups that they leave to the caller, on top of the threads it has when
// it first starts one: a Go program that cannot start a thread aborts.
const pidsReserve = 64

var (
	bounded  sync.Map // parent -> bool: a pids.max bounds its groups
	reserved sync.Map // parent -> struct{}: the caller's reserve is in place
)

// pidsBounded reports whether a pids.max above the groups under parent
// bounds them (and so, by default, the caller too). It is looked up once
// per parent and process.
func pidsBounded(parent string) bool {
	if v, ok := bounded.Load(parent); ok {
		return v.(bool)
	}
	n, err := cgroup.PidsBound(parent)
	v := err == nil && n > 0
	bounded.Store(parent, v)
	return v
}

// reserveOnce caps the sandboxes' groups under parent together, once per
// process, so that the caller keeps tasks of the limit above them (see
// cgroup.ReservePids).
func reserveOnce(parent string, logger *slog.Logger) {
	if _, done := reserved.LoadOrStore(parent, struct{}{}); done {
		return
	}
	limit, err := cgroup.ReservePids(parent, pidsReserve+threadCount())
	if logger == nil {
		return
	}
	if err != nil {
		logger.Warn("sandbox cgroup: keep tasks for the caller", "parent", parent, "err", err)
	} else if limit > 0 {
		logger.Debug("sandbox cgroup: the sandboxes' tasks together are capped", "parent", parent, "pids.max", limit)
	}
}

// threadCount returns the threads of this process now.
func threadCount() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
