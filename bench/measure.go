package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/bench/internal/wire"
)

// result is what the harness measured for one runner.
type result struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Isolation string `json:"isolation"`
	Version   string `json:"version,omitempty"`

	// Runs are the start-to-exit times of the latency phase, in ms.
	Runs []float64 `json:"runs,omitempty"`
	P50  float64   `json:"p50Ms"`
	P90  float64   `json:"p90Ms"`
	// CPU is the CPU time, in ms, one sandbox of the latency phase cost,
	// user and system, of every process involved: the launching one
	// included. OwnCPU is, for an in-process runner, the part the
	// program that embeds the library used (the rest is the sandboxes'
	// init stages and commands).
	CPU    float64 `json:"cpuMs"`
	OwnCPU float64 `json:"ownCPUMs,omitempty"`
	// Rate is sandboxes per second by number of launchers: the median of
	// Rates, one per throughput window.
	Rate  map[int]float64   `json:"rate"`
	Rates map[int][]float64 `json:"rates"`
	// RSS, PSS and Anon are the supervising processes' memory per running
	// sandbox, in MiB: resident, proportional (pages shared by several
	// processes, such as a binary's, divided among them) and anonymous
	// (each process's own); Held is how many sandboxes ran at once then.
	// Zero Held: not measured (plain exec has no supervisor).
	RSS  float64 `json:"rssMiB"`
	PSS  float64 `json:"pssMiB"`
	Anon float64 `json:"anonMiB"`
	Held int     `json:"held,omitempty"`
	// ByProcess is RSS per sandbox by process name; for an in-process
	// runner, "+owner" is what the program that embeds the library grew
	// by.
	ByProcess map[string]float64 `json:"byProcess,omitempty"`
	// Stages are an in-process runner's mean stage times, in ms, in the
	// order of a start; the last, "exit", is from the command's start to
	// Wait's return.
	Stages []stageTime `json:"stages,omitempty"`
	Error  string      `json:"error,omitempty"`

	stageSums   map[string]int64
	stageOrder  []string
	cpu, ownCPU time.Duration // of the latency runs
}

type stageTime struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

func (r *result) failed() bool { return r.Error != "" }

func (r *result) fail(err error) {
	if r.Error == "" {
		r.Error = err.Error()
	}
}

// once runs /bin/true in one whole-process sandbox of r and waits for it.
func (r *runner) once() error {
	cmd, _ := r.command(trueArgs)
	cmd.Stderr = r.stderr
	if err := cmd.Run(); err != nil {
		return r.failure(cmd, err)
	}
	return nil
}

// failure describes a command that failed, with the end of what the
// runner's commands wrote to standard error.
func (r *runner) failure(cmd *exec.Cmd, err error) error {
	msg := fmt.Sprintf("%s: %v", cmd.Args[0], err)
	if r.stderr != nil {
		if fi, serr := r.stderr.Stat(); serr == nil && fi.Size() > 0 {
			n := min(fi.Size(), 400)
			b := make([]byte, n)
			if _, rerr := r.stderr.ReadAt(b, fi.Size()-n); rerr == nil || rerr == io.EOF {
				msg += ": " + string(b)
			}
		}
	}
	return errors.New(msg)
}

// latency runs n sandboxes of r one after another and adds their times
// (and, in-process, their stages) to res.
func latency(r *runner, res *result, n int) error {
	if r.worker != nil {
		a, err := r.worker.ask(wire.Request{Op: wire.Latency, N: n})
		if err != nil {
			return err
		}
		for _, d := range a.Runs {
			res.Runs = append(res.Runs, ms(time.Duration(d)))
		}
		res.cpu += time.Duration(a.CPU)
		res.ownCPU += time.Duration(a.OwnCPU)
		if res.stageSums == nil {
			res.stageSums, res.stageOrder = map[string]int64{}, a.Order
		}
		for k, v := range a.Stages {
			res.stageSums[k] += v
		}
		return nil
	}
	cpu0 := cpuTime()
	defer func() { res.cpu += cpuTime() - cpu0 }()
	return onThread(r.thread, func() error {
		for range n {
			t := time.Now()
			if err := r.once(); err != nil {
				return err
			}
			res.Runs = append(res.Runs, ms(time.Since(t)))
		}
		return nil
	})
}

// cpuTime is the CPU time the harness and the processes it waited for
// have used, user and system.
func cpuTime() time.Duration {
	var self, kids unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &self)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// throughput runs sandboxes of r from launchers concurrent launchers for
// d and returns how many ended per second.
func throughput(r *runner, launchers int, d time.Duration) (float64, error) {
	if r.worker != nil {
		a, err := r.worker.ask(wire.Request{Op: wire.Throughput, Launchers: launchers, Seconds: d.Seconds()})
		if err != nil {
			return 0, err
		}
		return float64(a.Done) / time.Duration(a.Elapsed).Seconds(), nil
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, launchers)
	start := time.Now()
	deadline := start.Add(d)
	for i := range launchers {
		wg.Go(func() {
			errs[i] = onThread(r.thread, func() error {
				for time.Now().Before(deadline) {
					if err := r.once(); err != nil {
						return err
					}
					done.Add(1)
				}
				return nil
			})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

// holdTimeout bounds the wait for the memory phase's sandboxes to run.
const holdTimeout = time.Minute

// memory starts k sandboxes of r that sleep, measures the memory of what
// supervises them, ends them, and records the figures per sandbox in res.
func memory(r *runner, res *result, k int) error {
	if r.worker != nil {
		return memoryInProcess(r.worker, res, k)
	}
	var m memSum
	err := onThread(r.thread, func() error {
		var cmds []*exec.Cmd
		var stops []func(*exec.Cmd)
		defer func() {
			for i, cmd := range cmds {
				stops[i](cmd)
			}
		}()
		for range k {
			cmd, stop := r.command(sleepArgs)
			cmd.Stderr = r.stderr
			if err := cmd.Start(); err != nil {
				return r.failure(cmd, err)
			}
			cmds, stops = append(cmds, cmd), append(stops, stop)
		}
		deadline := time.Now().Add(holdTimeout)
		for i := 0; i < len(cmds); {
			procs := tree(cmds[i].Process.Pid)
			if slices.ContainsFunc(procs, func(p proc) bool { return p.Comm == payload }) {
				m.add(procs)
				i++
				continue
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("sandbox %d of %d: no %s process after %v", i+1, k, payload, holdTimeout)
			}
			if ws := exited(cmds[i]); ws != "" {
				return r.failure(cmds[i], errors.New(ws))
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.record(res, k)
	return nil
}

// exited reports, without waiting, whether cmd's process has ended, and
// how.
func exited(cmd *exec.Cmd) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return "exited"
	}
	// The state follows the command name in parentheses.
	if i := slices.Index(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return "exited"
	}
	return ""
}

// memoryInProcess measures the in-process worker: what it grew by while it
// held k sandboxes, plus the sandboxes' init stages, per sandbox.
func memoryInProcess(w *worker, res *result, k int) error {
	pid := w.cmd.Process.Pid
	before, err := readProc(pid)
	if err != nil {
		return fmt.Errorf("worker memory: %w", err)
	}
	if _, err := w.ask(wire.Request{Op: wire.Hold, K: k}); err != nil {
		return err
	}
	procs := tree(pid)
	_, err = w.ask(wire.Request{Op: wire.Release})
	if len(procs) == 0 || procs[0].Pid != pid {
		return errors.New("worker memory: the worker is gone")
	}
	var m memSum
	m.add(procs[1:])
	if m.payloads != k {
		return fmt.Errorf("worker memory: %d of %d sandboxes run %s", m.payloads, k, payload)
	}
	self := procs[0]
	m.rss += max(0, self.RSS-before.RSS)
	m.pss += max(0, self.PSS-before.PSS)
	m.anon += max(0, self.Anon-before.Anon)
	m.byComm["+owner"] = max(0, self.RSS-before.RSS)
	m.record(res, k)
	return err
}

// summarize computes the percentiles and the mean stages from the runs.
func (r *result) summarize() {
	if len(r.Runs) == 0 {
		return
	}
	s := slices.Clone(r.Runs)
	slices.Sort(s)
	r.P50, r.P90 = percentile(s, 50), percentile(s, 90)
	r.CPU = ms(r.cpu) / float64(len(r.Runs))
	r.OwnCPU = ms(r.ownCPU) / float64(len(r.Runs))
	if r.stageSums == nil {
		return
	}
	n := float64(len(r.Runs))
	var sum float64
	for _, v := range r.Runs {
		sum += v
	}
	mean := sum / n
	r.Stages = nil
	for _, name := range r.stageOrder {
		r.Stages = append(r.Stages, stageTime{name, ms(time.Duration(r.stageSums[name])) / n})
	}
	if total, ok := r.stageSums["total"]; ok {
		r.Stages = append(r.Stages, stageTime{"exit", mean - ms(time.Duration(total))/n})
	}
}

// median returns the median of vs, which it sorts.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// percentile returns the p-th percentile of sorted, by the nearest rank.
func percentile(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }
