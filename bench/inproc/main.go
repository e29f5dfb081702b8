// Command inproc is the benchmark harness's in-process worker: a small Go
// program that embeds the sandbox package, as a service would, and runs
// sandboxes on request. The harness (package main in the directory above)
// starts it, sends it one JSON request a line on standard input, and reads
// one JSON answer a line from standard output.
//
// It is a program of its own because the sandbox's init stage is a
// re-execution of the program that embeds the library: run from the
// harness, which links a plotting library, every start would also pay that
// library's package initialisation. This binary links only the sandbox
// package and the standard library.
//
// The messages are those of package bench/internal/wire:
//
//	{"op":"latency","n":20}             run n sandboxes one after another
//	{"op":"throughput","launchers":2,"seconds":3}
//	{"op":"hold","k":8}                 start k sandboxes running sleep
//	{"op":"release"}                    end the held sandboxes
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stockade/stockade/bench/internal/wire"
	"github.com/stockade/stockade/sandbox"
)

func main() {
	root := flag.String("root", "", "the root directory of every sandbox (default: the host's view of the zero Config)")
	limits := flag.Bool("limits", false, "give every sandbox a 256 MiB memory and 64 task limit")
	init := flag.Bool("init", false, "start sandboxes through the init stage, the fallback (STOCKADE_START=init)")
	heapMiB := flag.Int("heap", 0, "keep this many MiB of live, touched heap, as a large service would")
	reuse := flag.Bool("reuse", false, "let sandboxes take turns in network namespaces (Network.ReuseNamespace)")
	pool := flag.Bool("pool", false, "keep network namespaces ready for the starts (STOCKADE_NETNS_POOL=1)")
	layers := flag.String("layers", "", "instead of -root, a root overlaid from these unpacked image layers (comma-separated, lowest first) and an upper layer on tmpfs")
	flag.Parse()
	if *pool {
		os.Setenv("STOCKADE_NETNS_POOL", "1")
	}
	if *init {
		os.Setenv("STOCKADE_START", "init")
	}
	heap = make([][]byte, *heapMiB)
	for i := range heap {
		heap[i] = make([]byte, 1<<20)
		for j := 0; j < len(heap[i]); j += 4096 {
			heap[i][j] = 1
		}
	}
	w := &worker{cfg: sandbox.Config{RootDir: *root, Timeout: time.Minute}}
	w.cfg.Network.ReuseNamespace = *reuse
	if *layers != "" {
		w.cfg.RootDir, w.cfg.Overlay = "", &sandbox.Overlay{Layers: strings.Split(*layers, ",")}
	}
	if *limits {
		w.cfg.Limits = sandbox.Limits{Memory: 256 << 20, Pids: 64}
	}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req wire.Request
		var a wire.Answer
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			a.Error = err.Error()
		} else if err := w.serve(req, &a); err != nil {
			a.Error = err.Error()
		}
		if err := out.Encode(&a); err != nil {
			break
		}
	}
	w.release()
}

// heap is the live heap asked for with -heap: the cost of a start must not
// grow with it.
var heap [][]byte

type worker struct {
	cfg  sandbox.Config
	held []*sandbox.Sandbox
}

func (w *worker) serve(req wire.Request, a *wire.Answer) error {
	switch req.Op {
	case wire.Latency:
		return w.latency(req.N, a)
	case wire.Throughput:
		return w.throughput(req.Launchers, time.Duration(req.Seconds*float64(time.Second)), a)
	case wire.Hold:
		return w.hold(req.K)
	case wire.Release:
		return w.release()
	}
	return fmt.Errorf("unknown op %q", req.Op)
}

// run runs /bin/true in one sandbox; log, if set, receives its stages.
func (w *worker) run(log *slog.Logger) error {
	cfg := w.cfg
	cfg.Args = []string{"/bin/true"}
	cfg.Logger = log
	_, err := sandbox.New(cfg).Run(context.Background())
	return err
}

func (w *worker) latency(n int, a *wire.Answer) error {
	st := &stageSink{sums: map[string]int64{}}
	log := slog.New(st)
	own0, all0 := cpuTime()
	defer func() {
		own, all := cpuTime()
		a.CPU, a.OwnCPU = int64(all-all0), int64(own-own0)
	}()
	for range n {
		t := time.Now()
		if err := w.run(log); err != nil {
			return err
		}
		a.Runs = append(a.Runs, int64(time.Since(t)))
	}
	a.Stages, a.Order = st.sums, st.order
	return nil
}

func (w *worker) throughput(launchers int, d time.Duration, a *wire.Answer) error {
	var done atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range launchers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := w.run(nil); err != nil {
					once.Do(func() { first = err })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	a.Done, a.Elapsed = done.Load(), int64(time.Since(start))
	return first
}

// hold starts k sandboxes that sleep until release.
func (w *worker) hold(k int) error {
	for range k {
		cfg := w.cfg
		cfg.Args = []string{"/bin/sleep", "1000"}
		cfg.Timeout = 0
		sb := sandbox.New(cfg)
		if err := sb.Start(context.Background()); err != nil {
			w.release()
			return err
		}
		w.held = append(w.held, sb)
	}
	return nil
}

func (w *worker) release() error {
	for _, sb := range w.held {
		sb.Close()
	}
	w.held = nil
	return nil
}

// cpuTime returns the CPU time this process has used, and that with its
// waited-for descendants' (the sandboxes' init stages and commands).
func cpuTime() (own, all time.Duration) {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	own = time.Duration(self.Utime.Nano() + self.Stime.Nano())
	return own, own + time.Duration(kids.Utime.Nano()+kids.Stime.Nano())
}

// stageSink is a slog handler that adds up the stage durations of the
// sandbox's "sandbox started" debug records.
type stageSink struct {
	mu    sync.Mutex
	sums  map[string]int64
	order []string
}

func (s *stageSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *stageSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *stageSink) WithGroup(string) slog.Handler            { return s }

func (s *stageSink) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sandbox started" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() != slog.KindDuration {
			return true
		}
		if _, ok := s.sums[a.Key]; !ok {
			s.order = append(s.order, a.Key)
		}
		s.sums[a.Key] += int64(a.Value.Duration())
		return true
	})
	return nil
}
