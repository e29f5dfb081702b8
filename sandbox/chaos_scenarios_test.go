//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func (c *chaosRun) scenarios() []chaosScenario {
	return []chaosScenario{
		{name: "run-true", weight: 4, run: scRunTrue},
		{name: "lifecycle", weight: 14, run: scLifecycle},
		{name: "exec", weight: 10, run: scExec},
		{name: "pool", weight: 6, run: scPool},
		{name: "start-cancel", weight: 4, run: scStartCancel},
		{name: "kill-init", weight: 4, run: scKillInit},
		{name: "kill-init-in-start", weight: 2, run: scKillInitInStart},
		{name: "kill-command", weight: 4, run: scKillCommand},
		{name: "stop-command", weight: 3, run: scStopCommand},
		{name: "stop-init", weight: 3, run: func(r *chaosRound) { scStopInit(r, false) }},
		{name: "stop-init-close", weight: 1, run: func(r *chaosRound) { scStopInit(r, true) }},
		{name: "freeze-cgroup", weight: 2, run: scFreeze},
		{name: "remove-cgroup", weight: 3, run: scRemoveCgroup},
		{name: "remove-cgroup-cputime", weight: 1, run: scRemoveCgroupCPUTime},
		{name: "stdin-stalled", weight: 3, run: scStdin},
		{name: "stdout-blocked", weight: 1, run: scStdoutBlocked},
		{name: "stdout-fails", weight: 2, run: scStdoutFails},
		{name: "exec-stdout-fails", weight: 1, run: scExecStdoutFails},
		{name: "exec-shared-writer", weight: 1, run: scSharedWriter},
		{name: "exec-output-limit", weight: 1, run: scExecOutputLimit},
		{name: "exec-cputime", weight: 1, run: scExecCPUTime},
		{name: "misuse", weight: 2, run: scMisuse},
		{name: "misuse-kill-signal", weight: 1, run: scKillBadSignal},
		{name: "misuse-empty-args", weight: 1, run: scEmptyArgs},
		{name: "misuse-pool-huge", weight: 1, run: scPoolHuge},
	}
}

// command is a command a round runs, with the verdict it gets when nothing
// interferes ("" for one that never ends by itself).
type command struct {
	args    []string
	natural string
}

func (r *chaosRound) command(kinds ...string) command {
	switch r.pick(kinds...) {
	case "true":
		return command{[]string{r.bb, "true"}, "exited 0"}
	case "exit":
		n := 1 + r.intn(100)
		return command{[]string{r.bb, "sh", "-c", fmt.Sprintf("exit %d", n)}, fmt.Sprintf("exited %d", n)}
	case "trap":
		return command{[]string{r.bb, "sh", "-c", "trap '' TERM; sleep 30"}, ""}
	default:
		return command{[]string{r.bb, "sleep", "30"}, ""}
	}
}

// tracked is a sandbox a round started, and what it must leave behind
// when it ends: nothing.
type tracked struct {
	sb    *Sandbox
	pid   int
	start string
	dirs  map[string]string
}

// track records a started sandbox's init and cgroup.
func (r *chaosRound) track(sb *Sandbox) *tracked {
	t := &tracked{sb: sb, pid: initPid(sb)}
	t.start = procStart(t.pid)
	t.dirs = sandboxGroup(sb)
	r.logf("started: init %d, cgroup %v", t.pid, t.dirs)
	r.mu.Lock()
	r.rescues = append(r.rescues, func() {
		if t.start != "" && procStart(t.pid) == t.start {
			unix.Kill(t.pid, unix.SIGKILL)
		}
	})
	r.mu.Unlock()
	return t
}

// end waits for a tracked sandbox, checks its verdict and that nothing of
// it is left. Wait and Close are called in either order, and Wait twice.
func (r *chaosRound) end(t *tracked, timeout time.Duration, e *expect) {
	var res *Result
	var err error
	if r.chance(0.5) {
		if len(t.sb.cfg.Args) > 0 {
			e.allow("signaled SIGKILL") // Close kills the command
		}
		r.do("Close", bound(timeout), func() { r.checkErr("Close", t.sb.Close()) })
	}
	if !r.do("Wait", bound(timeout), func() { res, err = t.sb.Wait() }) {
		return
	}
	r.checkResult("Wait", res, err, e)
	r.do("Close (ended)", chaosGrace, func() { r.checkErr("Close (ended)", t.sb.Close()) })
	r.do("Wait (again)", chaosGrace, func() {
		res2, err2 := t.sb.Wait()
		if res2 != res || err2 != err {
			r.fail("a second Wait returned %v, %v; the first %v, %v", res2, err2, res, err)
		}
	})
	r.do("Kill (ended)", chaosGrace, func() { r.checkErr("Kill (ended)", t.sb.Kill(unix.SIGTERM), ErrFinished) })
	r.gone("the sandbox", t.pid, t.start, t.dirs)
}

// startOK starts sb and returns it tracked, or nil when Start failed (and
// then checks that the failure is final).
func (r *chaosRound) startOK(sb *Sandbox, ctx context.Context, timeout time.Duration, allowed ...error) *tracked {
	var err error
	if !r.do("Start", bound(timeout), func() { err = sb.Start(ctx) }) {
		return nil
	}
	if err == nil {
		return r.track(sb)
	}
	r.checkErr("Start", err, allowed...)
	r.do("Wait (failed start)", chaosGrace, func() {
		_, werr := sb.Wait()
		if werr != err {
			r.fail("Wait after a failed Start returned %v, Start %v", werr, err)
		}
	})
	r.do("Close (failed start)", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	return nil
}

// scRunTrue runs a command that exits 0, with nothing in its way: a lost
// verdict shows here.
func scRunTrue(r *chaosRound) {
	cfg := Config{Args: []string{r.bb, "true"}}
	if r.chance(0.5) {
		cfg.Timeout = 30 * time.Second
	}
	if r.chance(0.3) {
		cfg.Limits.Pids = 64
	}
	var res *Result
	var err error
	if r.do("Run", bound(cfg.Timeout), func() { res, err = New(cfg).Run(context.Background()) }) {
		r.checkResult("Run", res, err, newExpect("exited 0"))
	}
}

// enders are what may end a running sandbox: each allows its verdict in e
// before it acts.
func (r *chaosRound) ender(t *tracked, cancel context.CancelFunc, e *expect, kinds ...string) {
	delay := r.between(0, 60*time.Millisecond)
	switch r.pick(kinds...) {
	case "cancel":
		r.async("cancel", delay, chaosGrace, func() {
			e.allow("cancelled")
			cancel()
		})
	case "kill":
		r.async("Kill(SIGKILL)", delay, chaosGrace, func() {
			e.allow("signaled SIGKILL")
			r.checkErr("Kill(SIGKILL)", t.sb.Kill(unix.SIGKILL), ErrFinished)
		})
	case "term":
		r.async("Kill(SIGTERM)", delay, chaosGrace, func() {
			e.allow("signaled SIGTERM")
			r.checkErr("Kill(SIGTERM)", t.sb.Kill(unix.SIGTERM), ErrFinished)
		})
	case "close":
		r.async("Close", delay, chaosGrace, func() {
			e.allow("signaled SIGKILL")
			r.checkErr("Close", t.sb.Close())
		})
	case "wait":
		r.async("Wait (racing)", delay, chaosGrace+time.Minute, func() { t.sb.Wait() })
	case "stats":
		r.async("Stats", delay, chaosGrace, func() {
			_, err := t.sb.Stats()
			r.checkErr("Stats", err, ErrFinished, ErrNoCgroup)
		})
	}
}

// scLifecycle races Kill, Close, Wait, Stats and a cancel against a
// command's own end and its Timeout.
func scLifecycle(r *chaosRound) {
	cmd := r.command("true", "exit", "sleep", "sleep", "trap")
	cfg := Config{Args: cmd.args}
	e := newExpect()
	if cmd.natural != "" {
		e.allow(cmd.natural)
	}
	if r.chance(0.6) {
		cfg.Timeout = r.between(20*time.Millisecond, 400*time.Millisecond)
		e.allow("timeout")
	}
	if r.chance(0.3) {
		cfg.Limits.Pids = 128
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb := New(cfg)
	var startCancelled bool
	if r.chance(0.1) {
		startCancelled = true
		r.async("cancel (during Start)", r.between(0, 5*time.Millisecond), chaosGrace, func() {
			e.allow("cancelled")
			cancel()
		})
	}
	allowed := []error{}
	if startCancelled {
		allowed = append(allowed, context.Canceled)
	}
	if cfg.Timeout > 0 {
		allowed = append(allowed, ErrSetup) // the command did not start within Timeout
	}
	t := r.startOK(sb, ctx, cfg.Timeout, allowed...)
	if t == nil {
		return
	}
	for range 1 + r.intn(4) {
		r.ender(t, cancel, e, "cancel", "kill", "term", "close", "wait", "stats", "wait", "stats")
	}
	if cmd.natural == "" && cfg.Timeout == 0 {
		// Something must end it: the last resort is Close.
		r.ender(t, cancel, e, "cancel", "kill", "close")
	}
	r.end(t, cfg.Timeout, e)
}

// execKinds are the processes Exec and Pool.Run run in the rounds.
func (r *chaosRound) execCmd(ctx context.Context, e *expect) (Cmd, context.Context, func()) {
	cmd := r.command("true", "exit", "sleep", "sleep")
	c := Cmd{Args: cmd.args}
	if cmd.natural != "" {
		e.allow(cmd.natural)
	}
	cctx, cancel := context.WithCancel(ctx)
	if cmd.natural == "" || r.chance(0.3) {
		if r.chance(0.5) {
			c.Timeout = r.between(20*time.Millisecond, 300*time.Millisecond)
			e.allow("timeout")
		} else {
			d := r.between(0, 300*time.Millisecond)
			e.allow("cancelled")
			t := time.AfterFunc(d, cancel)
			return c, cctx, func() { t.Stop(); cancel() }
		}
	}
	return c, cctx, cancel
}

// scExec races Execs against each other and against Close, Kill and the
// sandbox's Timeout, in a long-lived sandbox.
func scExec(r *chaosRound) {
	cfg := Config{}
	sbEnd := newExpect("closed")
	if r.chance(0.3) {
		cfg.Timeout = r.between(100*time.Millisecond, 600*time.Millisecond)
		sbEnd.allow("timeout")
	}
	sb := New(cfg)
	t := r.startOK(sb, context.Background(), cfg.Timeout, ErrSetup)
	if t == nil {
		return
	}
	// When the sandbox ends under them (its Timeout, or a Close or Kill
	// at a random point among them), the processes die with it, or the
	// Exec is refused ("the sandbox is ending", or ErrFinished).
	n := 1 + r.intn(4)
	closeAt := -1
	if r.chance(0.3) {
		closeAt = r.intn(n)
		sbEnd.allow("signaled SIGKILL")
	}
	ended := cfg.Timeout > 0 || closeAt >= 0
	for i := range n {
		e := newExpect()
		var also []error
		if ended {
			e.allow("signaled SIGKILL")
			also = append(also, ErrFinished, ErrSetup)
		}
		if cfg.Timeout > 0 {
			// A process the sandbox's Timeout kills gets its verdict.
			e.allow("timeout")
		}
		cmd, ctx, cancel := r.execCmd(context.Background(), e)
		name := fmt.Sprintf("Exec#%d %v", i, cmd.Args[1:])
		r.async(name, r.between(0, 30*time.Millisecond), bound(max(cfg.Timeout, cmd.Timeout)+300*time.Millisecond), func() {
			defer cancel()
			res, err := sb.Exec(ctx, cmd)
			r.checkResult(name, res, err, e, also...)
		})
		if i == closeAt {
			r.ender(t, nil, sbEnd, "close", "kill")
		}
	}
	r.wg.Wait()
	if !ended {
		r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	}
	r.end(t, cfg.Timeout, sbEnd)
}

// scPool races Pool.Runs against each other and Pool.Close.
func scPool(r *chaosRound) {
	cfg := Config{}
	if r.chance(0.3) {
		cfg.Timeout = r.between(50*time.Millisecond, 300*time.Millisecond)
	}
	p, err := NewPool(cfg, 1+r.intn(2))
	if err != nil {
		r.fail("NewPool: %v", err)
		return
	}
	// Pool.Close races the runs, or comes after them.
	closing := r.chance(0.3)
	for i := range 1 + r.intn(4) {
		e := newExpect()
		if cfg.Timeout > 0 {
			e.allow("timeout")
		}
		cmd, ctx, cancel := r.execCmd(context.Background(), e)
		name := fmt.Sprintf("Pool.Run#%d %v", i, cmd.Args[1:])
		r.async(name, r.between(0, 30*time.Millisecond), bound(max(cfg.Timeout, cmd.Timeout)+300*time.Millisecond), func() {
			defer cancel()
			res, err := p.Run(ctx, cmd)
			var also []error
			if closing {
				also = append(also, ErrPoolClosed)
			}
			r.checkResult(name, res, err, e, also...)
		})
	}
	if closing {
		// Pool.Close waits for the runs under way, bounded by their Timeout.
		r.async("Pool.Close (racing)", r.between(0, 40*time.Millisecond), bound(max(cfg.Timeout, 300*time.Millisecond)), func() {
			r.checkErr("Pool.Close", p.Close())
		})
	}
	r.wg.Wait()
	r.do("Pool.Close", chaosGrace, func() { r.checkErr("Pool.Close", p.Close()) })
	r.do("Pool.Run (closed)", chaosGrace, func() {
		_, err := p.Run(context.Background(), Cmd{Args: []string{r.bb, "true"}})
		if !errors.Is(err, ErrPoolClosed) {
			r.fail("Pool.Run after Close returned %v, want ErrPoolClosed", err)
		}
	})
}

// scStartCancel cancels the context while Start runs, or before.
func scStartCancel(r *chaosRound) {
	cmd := r.command("true", "sleep")
	cfg := Config{Args: cmd.args}
	e := newExpect("cancelled")
	if cmd.natural != "" {
		e.allow(cmd.natural)
	}
	if r.chance(0.3) {
		cfg.Limits.Pids = 128
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if r.chance(0.2) {
		cancel()
	} else {
		time.AfterFunc(r.between(0, 8*time.Millisecond), cancel)
	}
	sb := New(cfg)
	t := r.startOK(sb, ctx, 0, context.Canceled)
	if t != nil {
		r.end(t, 0, e)
	}
}

// scKillInit kills the init from outside while the command, or an Exec,
// runs.
func scKillInit(r *chaosRound) {
	cmd := r.command("sleep", "trap")
	cfg := Config{Args: cmd.args}
	longLived := r.chance(0.4)
	if longLived {
		cfg.Args = nil
	}
	if r.chance(0.3) {
		cfg.Limits.Pids = 128
	}
	sb := New(cfg)
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	if longLived {
		r.async("Exec sleep", 0, chaosGrace, func() {
			res, err := sb.Exec(context.Background(), Cmd{Args: []string{r.bb, "sleep", "30"}})
			r.checkResult("Exec sleep", res, err, newExpect("signaled SIGKILL"), ErrFinished)
		})
	}
	time.Sleep(r.between(0, 30*time.Millisecond))
	r.signalInit(sb, unix.SIGKILL)
	r.end(t, 0, newExpect("signaled SIGKILL"))
}

// scKillInitInStart kills the init from outside while Start runs, before
// it reports.
func scKillInitInStart(r *chaosRound) {
	m, err := newMarker()
	if err != nil {
		r.fail("marker: %v", err)
		return
	}
	defer m.Close()
	cfg := Config{Args: []string{r.bb, "sleep", "30"}, ExtraFiles: []*os.File{m.w}}
	if r.chance(0.5) {
		cfg.Timeout = 2 * time.Second
	}
	sb := New(cfg)
	stop := make(chan struct{})
	killed := make(chan int, 1)
	r.async("kill the init", 0, chaosGrace, func() {
		defer close(killed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if pid := m.find(); pid != 0 {
				r.signalPid("init (in Start)", pid, unix.SIGKILL)
				killed <- pid
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	t := r.startOK(sb, context.Background(), cfg.Timeout, ErrSetup)
	close(stop)
	pid := <-killed
	switch {
	case t != nil && pid != 0 && pid != t.pid:
		r.fail("the kill hit process %d, not the round's init %d", pid, t.pid)
		t.sb.Kill(unix.SIGKILL)
	case t != nil && pid == 0:
		// Start won the race before the init was found: end it from here,
		// as the kill would have.
		t.sb.Kill(unix.SIGKILL)
	}
	if t != nil {
		r.end(t, cfg.Timeout, newExpect("signaled SIGKILL", "timeout"))
	}
}

// scKillCommand kills the command, or an Exec'd process, from outside.
func scKillCommand(r *chaosRound) {
	longLived := r.chance(0.5)
	cfg := Config{Args: []string{r.bb, "sleep", "30"}}
	if longLived {
		cfg.Args = nil
	}
	sb := New(cfg)
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	if !longLived {
		r.waitCommand(sb)
		r.signalCommand(sb, unix.SIGKILL)
		r.end(t, 0, newExpect("signaled SIGKILL"))
		return
	}
	r.async("Exec sleep", 0, chaosGrace, func() {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{r.bb, "sleep", "30"}})
		r.checkResult("Exec sleep", res, err, newExpect("signaled SIGKILL"))
	})
	r.waitCommand(sb)
	r.signalCommand(sb, unix.SIGKILL)
	r.wg.Wait()
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("closed"))
}

// waitCommand waits until the init has started a process that has become
// busybox.
func (r *chaosRound) waitCommand(sb *Sandbox) {
	deadline := time.Now().Add(chaosGrace)
	for time.Now().Before(deadline) {
		for _, k := range commandPids(sb) {
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k)); err == nil && strings.TrimSpace(string(comm)) == filepath.Base(r.bb) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	r.logf("the command did not show up")
}

// scStopCommand stops the command from outside; the sandbox must still
// end by its Timeout, a cancel, Kill or Close.
func scStopCommand(r *chaosRound) {
	cfg := Config{Args: []string{r.bb, "sleep", "30"}, Timeout: r.between(50*time.Millisecond, 300*time.Millisecond)}
	if r.chance(0.3) {
		cfg.Limits.Pids = 128
	}
	e := newExpect("timeout")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb := New(cfg)
	t := r.startOK(sb, ctx, cfg.Timeout, ErrSetup)
	if t == nil {
		return
	}
	r.waitCommand(sb)
	r.signalCommand(sb, unix.SIGSTOP)
	r.ender(t, cancel, e, "cancel", "kill", "close", "term", "wait")
	r.end(t, cfg.Timeout, e)
}

// scStopInit stops the init from outside; Timeout, a cancel and Kill must
// still end the sandbox, and (close) Close.
func scStopInit(r *chaosRound, close bool) {
	cfg := Config{Args: []string{r.bb, "sleep", "30"}, Timeout: r.between(50*time.Millisecond, 300*time.Millisecond)}
	e := newExpect("timeout")
	if close {
		// Close alone must end it, without a Timeout to fall back on.
		cfg.Timeout = 0
		e = newExpect()
	}
	if r.chance(0.3) {
		cfg.Limits.Pids = 128
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb := New(cfg)
	t := r.startOK(sb, ctx, cfg.Timeout, ErrSetup)
	if t == nil {
		return
	}
	r.signalInit(sb, unix.SIGSTOP)
	if close {
		r.ender(t, cancel, e, "close")
	} else {
		r.ender(t, cancel, e, "cancel", "kill", "wait", "stats")
	}
	r.end(t, cfg.Timeout, e)
}

// scFreeze freezes the sandbox's cgroup from outside: Timeout, a cancel,
// Kill, Close and Exec must still return.
func scFreeze(r *chaosRound) {
	longLived := r.chance(0.4)
	cfg := Config{Args: []string{r.bb, "sleep", "30"}, Limits: Limits{Pids: 128}}
	e := newExpect()
	if longLived {
		cfg.Args = nil
		e.allow("closed")
	}
	if r.chance(0.6) {
		cfg.Timeout = r.between(50*time.Millisecond, 300*time.Millisecond)
		e.allow("timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb := New(cfg)
	t := r.startOK(sb, ctx, cfg.Timeout, ErrSetup)
	if t == nil {
		return
	}
	if !r.freeze(sb) {
		r.fail("could not freeze the sandbox's cgroup")
	}
	if longLived {
		r.async("Exec (frozen)", 0, bound(200*time.Millisecond), func() {
			res, err := sb.Exec(ctx, Cmd{Args: []string{r.bb, "true"}, Timeout: 200 * time.Millisecond})
			// What ends the sandbox thaws its group first: an Exec the
			// init read before that request may then run to its end.
			r.checkResult("Exec (frozen)", res, err, newExpect("timeout", "signaled SIGKILL", "cancelled", "exited 0"), ErrFinished, ErrSetup)
		})
	}
	r.ender(t, cancel, e, "cancel", "kill", "close")
	r.end(t, cfg.Timeout, e)
}

// scRemoveCgroup removes the sandbox's cgroup from outside; it must still
// end as asked and leave nothing behind.
func scRemoveCgroup(r *chaosRound) {
	cfg := Config{Args: []string{r.bb, "sleep", "30"}, Limits: Limits{Pids: 128}}
	e := newExpect()
	if r.chance(0.5) {
		cfg.Timeout = r.between(50*time.Millisecond, 300*time.Millisecond)
		e.allow("timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb := New(cfg)
	t := r.startOK(sb, ctx, cfg.Timeout, ErrSetup)
	if t == nil {
		return
	}
	r.removeGroup(sb)
	r.ender(t, cancel, e, "cancel", "kill", "close", "term")
	r.end(t, cfg.Timeout, e)
}

// scRemoveCgroupCPUTime removes the cgroup of a sandbox that spins under
// a CPU-time limit: the limit must still end it.
func scRemoveCgroupCPUTime(r *chaosRound) {
	cfg := Config{
		Args:    []string{r.bb, "sh", "-c", "while :; do :; done"},
		Limits:  Limits{CPUTime: 100 * time.Millisecond},
		Timeout: 1500 * time.Millisecond,
	}
	sb := New(cfg)
	t := r.startOK(sb, context.Background(), cfg.Timeout, ErrSetup)
	if t == nil {
		return
	}
	r.removeGroup(sb)
	r.end(t, cfg.Timeout, newExpect("cpu-time-limit"))
}

// scStdin gives the command a stdin that stalls, or one that never ends
// while the command does not read it.
func scStdin(r *chaosRound) {
	g := r.newGate()
	var in interface{ Read([]byte) (int, error) } = stalledReader{g}
	if r.chance(0.5) {
		in = endlessReader{g}
	}
	r.timesOut(Cmd{Args: []string{r.bb, "sleep", "30"}, Stdin: in}, false)
}

// scStdoutBlocked gives Run or Exec a Stdout writer that blocks: the
// Timeout must still end them.
func scStdoutBlocked(r *chaosRound) {
	w := blockedWriter{r.newGate()}
	r.timesOut(Cmd{Args: []string{r.bb, "sh", "-c", "echo hello; sleep 30"}, Stdout: w}, true)
}

// timesOut runs cmd (its Args, Stdin and Stdout) with a Timeout of 50 to
// 300 ms, half the time as the command of a Run and half by Exec in a
// sandbox without a command: either must end at the Timeout. With
// healFirst the round's faults heal before the Exec's sandbox is closed.
func (r *chaosRound) timesOut(cmd Cmd, healFirst bool) {
	cmd.Timeout = r.between(50*time.Millisecond, 300*time.Millisecond)
	if r.chance(0.5) {
		cfg := Config{Args: cmd.Args, Stdin: cmd.Stdin, Stdout: cmd.Stdout, Timeout: cmd.Timeout}
		var res *Result
		var err error
		if r.do("Run", bound(cmd.Timeout), func() { res, err = New(cfg).Run(context.Background()) }) {
			// ErrSetup: the command did not start within the Timeout.
			r.checkResult("Run", res, err, newExpect("timeout"), ErrSetup)
		}
		return
	}
	sb := New(Config{})
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Exec", bound(cmd.Timeout), func() {
		res, err := sb.Exec(context.Background(), cmd)
		r.checkResult("Exec", res, err, newExpect("timeout"))
	})
	if healFirst {
		r.heal()
	}
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("closed"))
}

// failingOutput is a command that writes far more than a pipe holds, then
// exits 0: with a Stdout writer that fails, it must run to its end (the
// output is drained and discarded) rather than block on a full pipe.
const failingOutput = "head -c 1000000 /dev/zero; echo done"

// checkFailedOutput checks the end of failingOutput with a failing writer:
// the command's own verdict, and the write error as an *OutputError.
func (r *chaosRound) checkFailedOutput(op string, res *Result, err error, also ...error) {
	if res == nil {
		r.checkResult(op, res, err, newExpect("exited 0"), also...)
		return
	}
	r.logf("%s: %s, %v", op, verdict(res), err)
	var oe *OutputError
	if verdict(res) != "exited 0" || !errors.As(err, &oe) {
		r.fail("%s: %v, %T %v; want exited 0 with an *OutputError", op, res, err, err)
	}
}

// scStdoutFails gives Run a Stdout writer that fails.
func scStdoutFails(r *chaosRound) {
	cfg := Config{Args: []string{r.bb, "sh", "-c", failingOutput}, Stdout: chaosFailingWriter{}, Timeout: 5 * time.Second}
	var res *Result
	var err error
	if r.do("Run", bound(cfg.Timeout), func() { res, err = New(cfg).Run(context.Background()) }) {
		r.checkFailedOutput("Run", res, err, ErrSetup)
	}
}

// scExecStdoutFails gives Exec a Stdout writer that fails.
func scExecStdoutFails(r *chaosRound) {
	sb := New(Config{})
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Exec", chaosGrace, func() {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{r.bb, "sh", "-c", failingOutput}, Stdout: chaosFailingWriter{}})
		r.checkFailedOutput("Exec", res, err)
	})
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("closed"))
}

// scSharedWriter gives Exec or Pool.Run one writer for Stdout and Stderr,
// os/exec's combined output: it must never be called from two goroutines
// at once.
func scSharedWriter(r *chaosRound) {
	w := &exclusiveWriter{}
	cmd := Cmd{Args: []string{r.bb, "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo out; echo err >&2; i=$((i+1)); done"}, Stdout: w, Stderr: w}
	sb := New(Config{})
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Exec", chaosGrace, func() {
		res, err := sb.Exec(context.Background(), cmd)
		r.checkResult("Exec", res, err, newExpect("exited 0"))
	})
	if n := w.overlaps.Load(); n > 0 {
		r.fail("the writer shared by Stdout and Stderr was called from two goroutines at once %d times", n)
	}
	if got, want := w.n.Load(), int64(200*8); got != want && w.overlaps.Load() == 0 {
		r.fail("the shared writer got %d bytes, want %d", got, want)
	}
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("closed"))
}

// scExecOutputLimit runs a process that writes without end under
// Limits.Output.
func scExecOutputLimit(r *chaosRound) {
	sb := New(Config{Limits: Limits{Output: 64 << 10}})
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Exec yes", bound(time.Second), func() {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{r.bb, "yes"}, Stdout: &syncBuffer{}, Timeout: time.Second})
		r.checkResult("Exec yes", res, err, newExpect("output-limit"))
	})
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("closed", "output-limit"))
}

// scExecCPUTime runs a spinning process under Limits.CPUTime.
func scExecCPUTime(r *chaosRound) {
	sb := New(Config{Limits: Limits{CPUTime: 100 * time.Millisecond}})
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Exec spin", bound(2*time.Second), func() {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{r.bb, "sh", "-c", "while :; do :; done"}, Timeout: 2 * time.Second})
		r.checkResult("Exec spin", res, err, newExpect("cpu-time-limit"), ErrFinished)
	})
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("closed", "cpu-time-limit"))
}

// scMisuse calls methods out of order: each returns its sentinel at once.
func scMisuse(r *chaosRound) {
	sb := New(Config{Args: []string{r.bb, "sleep", "30"}})
	r.do("Wait (not started)", chaosGrace, func() {
		_, err := sb.Wait()
		r.checkErr("Wait (not started)", err, ErrNotStarted)
		if err == nil {
			r.fail("Wait before Start returned nil")
		}
	})
	r.do("Kill (not started)", chaosGrace, func() {
		r.checkErr("Kill (not started)", errOrFail(r, sb.Kill(unix.SIGKILL)), ErrNotStarted)
	})
	r.do("Exec (not started)", chaosGrace, func() {
		_, err := sb.Exec(context.Background(), Cmd{Args: []string{"true"}})
		r.checkErr("Exec (not started)", errOrFail(r, err), ErrNotStarted)
	})
	r.do("Stats (not started)", chaosGrace, func() {
		_, err := sb.Stats()
		r.checkErr("Stats (not started)", errOrFail(r, err), ErrNotStarted)
	})
	r.do("Close (not started)", chaosGrace, func() { r.checkErr("Close (not started)", sb.Close()) })
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Start (again)", chaosGrace, func() {
		r.checkErr("Start (again)", errOrFail(r, sb.Start(context.Background())), ErrStarted)
	})
	r.do("Exec (with a command)", chaosGrace, func() {
		res, err := sb.Exec(context.Background(), Cmd{Args: []string{r.bb, "true"}})
		r.checkResult("Exec (with a command)", res, err, newExpect("exited 0"))
	})
	r.do("Exec (no Args)", chaosGrace, func() {
		_, err := sb.Exec(context.Background(), Cmd{})
		r.checkErr("Exec (no Args)", errOrFail(r, err), ErrInvalidConfig)
	})
	r.do("Exec (negative Timeout)", chaosGrace, func() {
		_, err := sb.Exec(context.Background(), Cmd{Args: []string{"true"}, Timeout: -1})
		r.checkErr("Exec (negative Timeout)", errOrFail(r, err), ErrInvalidConfig)
	})
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("signaled SIGKILL"))
}

// errOrFail returns err, failing the round when it is nil.
func errOrFail(r *chaosRound, err error) error {
	if err == nil {
		r.fail("misuse returned nil, want an error")
	}
	return err
}

// scKillBadSignal sends a signal number that does not exist.
func scKillBadSignal(r *chaosRound) {
	sb := New(Config{Args: []string{r.bb, "sleep", "30"}})
	t := r.startOK(sb, context.Background(), 0)
	if t == nil {
		return
	}
	r.do("Kill(999)", chaosGrace, func() {
		err := sb.Kill(syscall.Signal(999))
		if err == nil {
			r.fail("Kill(999) returned nil")
		} else {
			r.checkErr("Kill(999)", err, ErrInvalidConfig, unix.EINVAL)
		}
	})
	r.do("Close", chaosGrace, func() { r.checkErr("Close", sb.Close()) })
	r.end(t, 0, newExpect("signaled SIGKILL"))
}

// scEmptyArgs runs a sandbox without a command: "no command" must be an
// error, as in os/exec.
func scEmptyArgs(r *chaosRound) {
	sb := New(Config{})
	r.mu.Lock()
	r.rescues = append(r.rescues, func() { sb.Close() })
	r.mu.Unlock()
	var err error
	r.do("Run (no Args)", chaosGrace, func() { _, err = sb.Run(context.Background()) })
	r.checkErr("Run (no Args)", errOrFail(r, err), ErrInvalidConfig)
}

// scPoolHuge asks for a pool larger than memory can hold.
func scPoolHuge(r *chaosRound) {
	r.do("NewPool(MaxInt)", chaosGrace, func() {
		p, err := NewPool(Config{}, math.MaxInt)
		if err == nil {
			p.Close()
			r.fail("NewPool(MaxInt) returned no error")
			return
		}
		r.checkErr("NewPool(MaxInt)", err, ErrInvalidConfig)
	})
}
