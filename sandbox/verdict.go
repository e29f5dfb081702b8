//go:build linux

package sandbox

// How a run ended: the verdict of the limits (the OOM counter of the
// group, CPU time, output) on the Result of the sandbox and of each
// process Exec runs.

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// verdict fills in res what the limits decide: the figures of the group,
// and the Reason when a limit ended the run. A limit the parent killed the
// sandbox for has already set the Reason.
func (l *limiter) verdict(res *Result) {
	if l == nil {
		return
	}
	res.Notes = l.notes
	if l.group != nil && l.statsErr == nil {
		st := l.stats
		res.UserTime, res.SystemTime = st.CPUUser, st.CPUSystem
		res.MemoryPeak = clampInt64(st.MemoryPeak)
		res.PidsPeak = clampInt64(st.PidsPeak)
		res.ForksRefused = clampInt64(st.ForksRefused)
		res.OOMKills = clampInt64(st.OOMKills)
	} else if u, s := time.Duration(l.procUser.Load()), time.Duration(l.procSys.Load()); u+s > res.UserTime+res.SystemTime {
		// The group went missing; the watchdog counted from /proc, which
		// sees the processes the init had not waited for.
		res.UserTime, res.SystemTime = u, s
	}
	overCPU := l.limits.CPUTime > 0 && l.group != nil && res.UserTime+res.SystemTime > l.limits.CPUTime
	res.Reason = limitReason(res, l.output.over(), overCPU, res.OOMKills)
}

// limitReason returns the Reason of a run that ended as res says, given
// what the limits saw: whether the output or the CPU time went over its
// limit, and how many OOM kills the group counted meanwhile. A run the
// parent killed keeps its Reason: the first cause stands.
func limitReason(res *Result, overOutput, overCPU bool, oomKills int64) Reason {
	switch res.Reason {
	case Exited, Signaled:
	default:
		return res.Reason
	}
	switch {
	case overOutput:
		return OutputLimit
	case overCPU:
		return CPUTimeLimit
	case res.Reason == Signaled && res.Signal == unix.SIGKILL && oomKills > 0:
		// Killed by SIGKILL while the group's OOM counter shows a kill:
		// the OOM killer ended the run.
		return OOMKilled
	}
	return res.Reason
}

// oomKills returns the OOM kills the group has counted so far, and false
// when there is no group with a memory limit to count them, or it cannot
// be read (it has gone with the sandbox).
func (l *limiter) oomKills() (int64, bool) {
	if l == nil || l.group == nil || l.limits.Memory <= 0 {
		return 0, false
	}
	st, err := l.group.Stats()
	if err != nil {
		return 0, false
	}
	return clampInt64(st.OOMKills), true
}

// execLimits are the limits as they bind one process that Exec runs in a
// sandbox: an output counter of its own, killing the process (not the
// sandbox) when it trips, and the group's OOM counter when it started.
// The CPU time and memory of the sandbox are shared: when they run out
// the sandbox ends, and the process with it.
type execLimits struct {
	lim       *limiter
	output    *outputCounter // nil without Limits.Output
	hit       chan Reason    // receives OutputLimit when the counter trips
	oomBefore int64
	oomKnown  bool
}

func (s *Sandbox) execLimits(cfg *Config) *execLimits {
	e := &execLimits{hit: make(chan Reason, 1)}
	e.output = newOutputCounter(cfg, func() {
		select {
		case e.hit <- OutputLimit:
		default:
		}
	})
	s.mu.Lock()
	e.lim = s.lim
	s.mu.Unlock()
	e.oomBefore, e.oomKnown = e.lim.oomKills()
	return e
}

// endReason returns what ended the sandbox, for an Exec'd process that
// ended with it: a limit, the sandbox's Timeout or its context, or 0 when
// it was closed or killed (or ended on its own). It waits for the
// sandbox's Result until deadline, and then goes by the parent's kill
// reason alone.
func (s *Sandbox) endReason(deadline time.Time) (Reason, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.result != nil {
		switch r := s.result.Reason; r {
		case Timeout, Cancelled, OOMKilled, CPUTimeLimit, OutputLimit:
			return r, s.killCause
		}
		return 0, nil
	}
	return s.killReason, s.killCause
}

// verdict sets the Reason of the process's Result, as limiter.verdict
// does for the sandbox's command. killed is why the parent killed the
// process, or the sandbox it ran in (0: it did not).
func (e *execLimits) verdict(res *Result, killed Reason) {
	if killed != 0 && res.Reason == Signaled && res.Signal == unix.SIGKILL {
		res.Reason = killed
		return
	}
	var oom int64
	if e.oomKnown && res.Reason == Signaled && res.Signal == unix.SIGKILL {
		if after, ok := e.lim.oomKills(); ok {
			oom = max(after-e.oomBefore, 0)
			res.OOMKills = oom
		}
	}
	res.Reason = limitReason(res, e.output.over(), false, oom)
}

// describeWait says how a process ended, as a shell would.
func describeWait(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
