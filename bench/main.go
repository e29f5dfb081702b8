// Command bench measures stockade against the tools people would pick
// instead, side by side in one run on the same machine and the same root:
//
//	cd bench
//	go run .                       # the full run, about two minutes
//	go run . --smoke               # that everything works, in seconds
//	go run . --readme ../README.md # and put the tables in the README
//	go run . --ctr                 # ctr run through containerd: runc against stockade (ctr.go)
//
// It runs /bin/true from a static busybox root it builds in a temporary
// directory, with plain exec, stockade in-process (the default config, in a
// worker program that embeds the library: bench/inproc), the stockade
// command (built from this tree), and whichever of bwrap, crun, runc and
// unshare are installed (Debian packages bubblewrap, crun, runc,
// util-linux), each with comparable isolation. For each it measures the
// start-to-exit latency (median and 90th percentile), throughput (sandboxes
// per second with 1, 2 and 8 concurrent launchers) and the memory of the
// processes that supervise a running sandbox, and writes results.md (the
// table the README shows), results.json and results.png (a plot) to the
// results directory. It runs as root.
//
// bench is a module of its own, so that the library's go.mod does not
// carry the plotting library: bench/go.mod replaces the library with this
// tree (../), and the harness runs from bench's directory.
//
// The harness times everything itself, in Go, rather than through a
// benchmarking tool, so that it controls the runs: each runner's latency
// runs are interleaved with the others' in rounds, so that a noisy moment
// of a shared machine falls on all of them alike.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	flag "github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

type options struct {
	out       string
	runs      int
	rounds    int
	duration  time.Duration
	windows   int
	launchers []int
	hold      int
	only      []string
	smoke     bool
	stockade  string
	inproc    string
	busybox   string
	readme    string
	from      string
	unpack    bool
	ctr       bool
}

// The main goroutine keeps the main thread to itself, so that onThread
// never prepares the main thread, which cannot end with its goroutine.
func init() { runtime.LockOSThread() }

func main() {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "results", "write results.md, results.json and results.png to `DIR`")
	fs.IntVar(&o.runs, "runs", 200, "latency runs per runner")
	fs.IntVar(&o.rounds, "rounds", 10, "rounds the latency runs are interleaved in")
	fs.DurationVar(&o.duration, "duration", time.Second, "how long each throughput window lasts")
	fs.IntVar(&o.windows, "windows", 3, "throughput windows per runner and number of launchers, interleaved; the median counts")
	fs.IntSliceVar(&o.launchers, "launchers", []int{1, 2, 8}, "numbers of concurrent launchers for throughput")
	fs.IntVar(&o.hold, "hold", 8, "sandboxes running at once for the memory measurement")
	fs.StringSliceVar(&o.only, "only", nil, "measure only these runners (plain, stockade, stockade-pool, stockade-reuse, stockade-limits, stockade-heap, stockade-init, stockade-init-heap, stockade-image, stockade-host, cli, bwrap, crun, runc, unshare)")
	fs.BoolVar(&o.smoke, "smoke", false, "a short run that checks that every installed runner works: 6 runs, 0.3 s, 1 and 2 launchers, 2 held")
	fs.StringVar(&o.stockade, "stockade", "", "the stockade command to measure (default: built from this tree)")
	fs.StringVar(&o.inproc, "inproc", "", "the in-process worker (default: built from inproc)")
	fs.StringVar(&o.busybox, "busybox", "/bin/busybox", "a static busybox to build the root from")
	fs.StringVar(&o.from, "from", "", "measure nothing: write the results of an earlier run's results.json `FILE` again")
	fs.BoolVar(&o.unpack, "unpack", false, "measure only the image store's unpacking against tar -x (see unpack.go), into DIR/unpack.md")
	fs.BoolVar(&o.ctr, "ctr", false, "measure only ctr run through containerd with runc and with stockade (see ctr.go), 50 runs of each unless --runs, into DIR/ctr.{md,json}")
	fs.StringVar(&o.readme, "readme", "", "also put results.md between the benchmark markers of `FILE` (README.md)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if o.ctr {
		runs := ctrRunsFull
		switch {
		case fs.Changed("runs"):
			runs = o.runs
		case o.smoke:
			runs = ctrRunsSmoke
		}
		if runs < 1 {
			fmt.Fprintln(os.Stderr, "bench: --runs: must be at least 1")
			os.Exit(2)
		}
		if err := runCtr(&o, runs); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.smoke {
		o.runs, o.rounds, o.duration, o.windows, o.launchers, o.hold = 6, 2, 300*time.Millisecond, 1, []int{1, 2}, 2
	}
	if o.unpack {
		if err := runUnpack(&o); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.from != "" {
		if err := rewrite(&o); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	if err := run(&o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch {
	case o.runs < 1:
		return errors.New("--runs: must be at least 1")
	case o.rounds < 1 || o.rounds > o.runs:
		return errors.New("--rounds: must be between 1 and --runs")
	case o.duration <= 0:
		return errors.New("--duration: must be positive")
	case o.windows < 1:
		return errors.New("--windows: must be at least 1")
	case o.hold < 1:
		return errors.New("--hold: must be at least 1")
	case len(o.launchers) == 0 || slices.ContainsFunc(o.launchers, func(l int) bool { return l < 1 }):
		return errors.New("--launchers: must be positive numbers")
	case os.Geteuid() != 0:
		return errors.New("the benchmark runs as root: the peers need it (cd bench && sudo go run .)")
	}
	return nil
}

// run measures every runner and writes the results; it fails when a runner
// that is installed did not work.
func run(o *options) error {
	dir, err := os.MkdirTemp("", "stockade-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The runtimes' user namespaces map the container's root onto an
	// unprivileged host id, which must be able to walk to the root.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	e := &env{root: filepath.Join(dir, "root"), dir: dir, stockade: o.stockade, inproc: o.inproc}
	if err := os.Mkdir(e.root, 0o755); err != nil {
		return err
	}
	if err := makeRoot(e.root, o.busybox); err != nil {
		return err
	}
	if err := build(e); err != nil {
		return err
	}
	rs, missing := runners(e)
	defer func() {
		for _, r := range rs {
			if r.worker != nil {
				r.worker.close()
			}
		}
	}()
	if len(o.only) > 0 {
		rs = slices.DeleteFunc(rs, func(r *runner) bool {
			if slices.Contains(o.only, r.Key) {
				return false
			}
			if r.worker != nil {
				r.worker.close()
			}
			return true
		})
	}
	rep := &report{
		Date: time.Now(), Host: host(), Load: loadAverage(), Busybox: busyboxVersion(o.busybox),
		Runs: o.runs, Rounds: o.rounds, Duration: o.duration.String(), Windows: o.windows,
		Launchers: o.launchers, Hold: o.hold, Missing: missing,
	}
	for _, r := range rs {
		f, err := os.OpenFile(filepath.Join(dir, r.Key+".stderr"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		r.stderr = f
		rep.Results = append(rep.Results, &result{Key: r.Key, Name: r.Name, Isolation: r.Isolation, Version: r.Version,
			Rate: map[int]float64{}, Rates: map[int][]float64{}})
	}
	p := newProgress(os.Stderr, len(rs)*(1+o.rounds+len(o.launchers)*o.windows+1))
	for _, m := range missing {
		p.note("not measured: %s", m)
	}
	measureAll(o, rs, rep.Results, p)
	p.finish()

	if err := rep.save(o); err != nil {
		return err
	}
	var failed []string
	for _, r := range rep.Results {
		if r.failed() {
			failed = append(failed, r.Name+": "+r.Error)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d %s failed:\n  %s", len(failed), plural(len(failed), "runner"), strings.Join(failed, "\n  "))
	}
	return nil
}

// measureAll runs the three phases: latency in interleaved rounds (after
// a warm-up), throughput in interleaved windows, memory. A runner that
// fails is left out of what follows.
func measureAll(o *options, rs []*runner, results []*result, p *progress) {
	each := func(phase string, f func(r *runner, res *result) error) {
		for i, r := range rs {
			res := results[i]
			if res.failed() {
				p.step("%s: %s (skipped: failed)", phase, r.Name)
				continue
			}
			p.step("%s: %s", phase, r.Name)
			if err := f(r, res); err != nil {
				res.fail(fmt.Errorf("%s: %w", phase, err))
				p.note("%s failed: %s", r.Name, res.Error)
			}
		}
	}
	each("warm-up", func(r *runner, res *result) error {
		var discard result
		return latency(r, &discard, 3)
	})
	per := (o.runs + o.rounds - 1) / o.rounds
	for round := range o.rounds {
		n := min(per, o.runs-round*per)
		each(fmt.Sprintf("latency round %d/%d", round+1, o.rounds), func(r *runner, res *result) error {
			return latency(r, res, n)
		})
	}
	for _, res := range results {
		res.summarize()
	}
	for _, l := range o.launchers {
		for w := range o.windows {
			each(fmt.Sprintf("throughput, %d %s, window %d/%d", l, plural(l, "launcher"), w+1, o.windows), func(r *runner, res *result) error {
				rate, err := throughput(r, l, o.duration)
				res.Rates[l] = append(res.Rates[l], rate)
				return err
			})
		}
	}
	for _, res := range results {
		for l, rates := range res.Rates {
			res.Rate[l] = median(rates)
		}
	}
	each(fmt.Sprintf("memory, %d running", o.hold), func(r *runner, res *result) error {
		if r.Key == "plain" {
			return nil // no supervisor
		}
		return memory(r, res, o.hold)
	})
}

// rewrite writes the outputs of the report in o.from again, as they
// would come out of this tree, without measuring anything.
func rewrite(o *options) error {
	b, err := os.ReadFile(o.from)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", o.from, err)
	}
	return rep.save(o)
}

// save writes the report to o.out and, with o.readme, to the README.
func (rep *report) save(o *options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := rep.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(o.out, "results.{md,json,png}"))
	if o.readme != "" {
		var md strings.Builder
		rep.markdown(&md)
		if err := updateReadme(o.readme, md.String()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.readme)
	}
	return nil
}

// write writes results.md, results.json and results.png to dir.
func (rep *report) write(dir string) error {
	f, err := os.Create(filepath.Join(dir, "results.md"))
	if err != nil {
		return err
	}
	rep.markdown(f)
	if err := f.Close(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return rep.writePlot(filepath.Join(dir, "results.png"))
}

// build builds the stockade command and the in-process worker from this
// tree unless they were given.
func build(e *env) error {
	if err := buildStockade(e); err != nil {
		return err
	}
	return buildInto(&e.inproc, e.dir, "github.com/stockade/stockade/bench", "./inproc")
}

// buildStockade builds the stockade command into e.dir unless it was
// given. It is built in the library's module, where bench's replace
// directive points, with the library's own dependencies; the worker in
// bench's module.
func buildStockade(e *env) error {
	return buildInto(&e.stockade, e.dir, "github.com/stockade/stockade", "./cmd/stockade")
}

// buildInto builds pkg of module into dir and sets *path to the binary,
// unless *path is set already.
func buildInto(path *string, dir, module, pkg string) error {
	if *path != "" {
		return nil
	}
	mdir, err := moduleDir(module)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = mdir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, mdir, err, msg)
	}
	*path = out
	return nil
}

// moduleDir is the directory of module path as the go command resolves it
// from bench's module: bench itself, or the library through the replace
// directive in bench/go.mod. The harness runs from bench's directory (cd
// bench && go run .), as its tests do.
func moduleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("find module %s (run the harness from bench/): %w", path, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("find module %s (run the harness from bench/): go list gave no directory", path)
	}
	return dir, nil
}

// busyboxVersion is the version line of busybox, without its blurb.
func busyboxVersion(path string) string {
	v, _, _ := strings.Cut(version(path, "--help"), " multi-call")
	return v
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// host describes the machine in a few words.
func host() string {
	var uts unix.Utsname
	unix.Uname(&uts)
	return fmt.Sprintf("Linux %s, %d CPUs, %s", unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(), runtime.Version())
}
