package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/imagetest"
)

// The ctr rows (--ctr): a container started through containerd, as a
// user of containerd starts one, with runc and with stockade as the
// runtime of containerd's runc shim (ctr run --runc-binary). A private
// containerd (ctrd.go) imports a one-layer image of the busybox root the
// other rows use, built here, and each run is
//
//	ctr run --rm IMAGE ID /bin/echo ok
//
// timed from ctr's start to its exit (the whole: the container's
// creation from the image, its snapshot mounted, the shim started,
// create, start, the command, its exit, delete, the snapshot removed) and
// to the first byte of the container's output on ctr's standard output
// (the container made and started, its command running). The runs
// alternate between the runtimes, the first of each pair changing every
// time, so that both see the same machine.

// ctrImage is the name the image is imported as: the ref name writeImage
// gives it under --base-name.
const (
	ctrImageBase = "stockade.local/bench"
	ctrImage     = ctrImageBase + ":x"
	ctrWarmUp    = 2 // runs of each runtime before the measured ones
	ctrRunsFull  = 50
	ctrRunsSmoke = 3
)

// ctrArgs is what each container runs.
var ctrArgs = []string{"/bin/echo", "ok"}

// ctrRuntime is a runtime the shim runs: --runc-binary and --runc-root.
type ctrRuntime struct {
	Key, Name, Version string
	binary, root       string
}

// ctrResult is one runtime's runs, in milliseconds, in the order run.
type ctrResult struct {
	Key     string    `json:"key"`
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Whole   []float64 `json:"whole_ms"`
	First   []float64 `json:"first_output_ms"`
	// Calls are the runtime's processes the shim started in each run,
	// by subcommand ("delete 2" for a second delete), their times in ms
	// from exec to exit; nil without the process events.
	Calls map[string][]float64 `json:"calls_ms,omitempty"`
	// CallsTotal is the sum of each run's calls.
	CallsTotal []float64 `json:"calls_total_ms,omitempty"`
	// Monitor is how long stockade's monitor lived (from its exec to its
	// end) in each run.
	Monitor []float64 `json:"monitor_ms,omitempty"`
}

// ctrReport is one run of the ctr rows.
type ctrReport struct {
	Date       time.Time    `json:"date"`
	Host       string       `json:"host"`
	Load       string       `json:"load"`
	Containerd string       `json:"containerd"`
	Busybox    string       `json:"busybox"`
	Runs       int          `json:"runs"`
	Results    []*ctrResult `json:"results"`
	// Calls says why the runtime calls are not split out, when they are
	// not.
	Calls string `json:"calls,omitempty"`
}

// The README's markers for the ctr rows.
const (
	ctrReadmeBegin = "<!-- bench ctr: begin (cd bench && go run . --ctr --readme ../README.md) -->"
	ctrReadmeEnd   = "<!-- bench ctr: end -->"
)

// runCtr measures the ctr rows and writes ctr.md and ctr.json to o.out
// (and the table to o.readme). SIGINT and SIGTERM end the runs; what the
// harness started is stopped and removed either way.
func runCtr(o *options, runs int) error {
	if os.Geteuid() != 0 {
		return errors.New("the ctr rows run as root: containerd does (cd bench && sudo go run . --ctr)")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return errors.New("runc is not installed (Debian package runc)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	// Signals stay caught until the cleanup is over: a second ^C does not
	// cut it short (it is bounded).
	defer stop()
	rep, err := measureCtr(ctx, o, runc, runs)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		return err
	}
	return rep.save(o)
}

// measureCtr builds the image and stockade, starts containerd, runs the
// containers and stops everything again.
func measureCtr(ctx context.Context, o *options, runc string, runs int) (rep *ctrReport, err error) {
	dir, err := os.MkdirTemp("", "stockade-bench-ctr-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	// stockade's user namespace maps the container's root onto an
	// unprivileged host id, which must be able to walk to the root.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	e := &env{root: filepath.Join(dir, "root"), dir: dir, stockade: o.stockade}
	if err := buildStockade(e); err != nil {
		return nil, err
	}
	archive, err := ctrImageArchive(dir, o.busybox)
	if err != nil {
		return nil, err
	}
	c, err := startContainerd(filepath.Join(dir, "containerd"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := c.stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("clean up after containerd: %w", serr))
		}
	}()
	if _, err := c.run(ctx, "image", "import", "--base-name", ctrImageBase, archive); err != nil {
		return nil, fmt.Errorf("%w%s", err, c.logTail())
	}
	rts := []*ctrRuntime{
		{Key: "runc", Name: "runc", Version: version(runc, "--version"), binary: runc},
		{Key: "stockade", Name: "stockade", Version: "this tree", binary: e.stockade},
	}
	rep = &ctrReport{Date: time.Now(), Host: host(), Load: loadAverage(), Containerd: c.version(),
		Busybox: busyboxVersion(o.busybox), Runs: runs}
	for _, rt := range rts {
		rt.root = filepath.Join(dir, "runtime-"+rt.Key)
		rep.Results = append(rep.Results, &ctrResult{Key: rt.Key, Name: rt.Name, Version: rt.Version})
	}
	// Every runtime call names dir (--root, --log): the process events
	// of those are the split of each run.
	watch, err := watchProcs(dir)
	if err != nil {
		rep.Calls = err.Error()
	} else {
		defer watch.stop()
	}
	fifos := filepath.Join(dir, "fifo")
	p := newProgress(os.Stderr, 1+runs)
	defer p.finish()
	p.step("warm-up: %d runs of each", ctrWarmUp)
	for i := range ctrWarmUp {
		for _, rt := range rts {
			if _, err := ctrOnce(ctx, c, rt, fifos, fmt.Sprintf("warm-%s-%d", rt.Key, i)); err != nil {
				return nil, err
			}
		}
	}
	for i := range runs {
		p.step("ctr run --rm, pair %d/%d", i+1, runs)
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			rt, res := rts[k], rep.Results[k]
			t, err := ctrOnce(ctx, c, rt, fifos, fmt.Sprintf("%s-%d", rt.Key, i))
			if err != nil {
				return nil, err
			}
			res.Whole = append(res.Whole, ms(t.whole))
			res.First = append(res.First, ms(t.first))
			if watch != nil {
				// The last exit comes a moment after ctr's: the events
				// are read by another goroutine.
				time.Sleep(5 * time.Millisecond)
				calls, missed := watch.between(t.from, t.to)
				if missed {
					rep.Calls = "the process events overflowed the socket's buffer (a busy host): some are missing"
				}
				res.addCalls(rt, calls)
			}
		}
	}
	if rep.Calls != "" {
		for _, res := range rep.Results {
			res.Calls, res.CallsTotal, res.Monitor = nil, nil, nil
		}
	}
	return rep, nil
}

// ctrSubcommands are the runtime's subcommands, as the calls are named.
var ctrSubcommands = []string{"create", "start", "state", "kill", "delete", "exec", "ps", "pause", "resume", "update", "features", "runtime-monitor"}

// subcommand is the first of args that names a subcommand.
func subcommand(args []string) string {
	for _, a := range args[1:] {
		if slices.Contains(ctrSubcommands, a) {
			return a
		}
	}
	return "?"
}

// addCalls adds the runtime calls of one run: rt's processes that
// ended; the monitor separately.
func (r *ctrResult) addCalls(rt *ctrRuntime, calls []procExec) {
	if r.Calls == nil {
		r.Calls = map[string][]float64{}
	}
	seen := map[string]int{}
	total := 0.0
	defer func() { r.CallsTotal = append(r.CallsTotal, total) }()
	for _, c := range calls {
		if c.end == 0 {
			continue
		}
		d := float64(c.end-c.exec) / 1e6
		sub := subcommand(c.args)
		if sub == "runtime-monitor" {
			r.Monitor = append(r.Monitor, d)
			continue
		}
		if c.args[0] != rt.binary {
			continue
		}
		seen[sub]++
		total += d
		name := sub
		if seen[sub] > 1 {
			name = fmt.Sprintf("%s %d", sub, seen[sub])
		}
		r.Calls[name] = append(r.Calls[name], d)
	}
}

// ctrImageArchive builds the busybox root in dir, with the mount points
// ctr's spec names, and writes it as a one-layer OCI image archive; it
// returns the archive's path.
func ctrImageArchive(dir, busybox string) (string, error) {
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", err
	}
	if err := makeRoot(root, busybox); err != nil {
		return "", err
	}
	// ctr's spec mounts a tmpfs on /run; stockade maps the container's
	// root onto an unprivileged id, which cannot make it in the snapshot.
	if err := os.Mkdir(filepath.Join(root, "run"), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "echo")); err != nil {
		return "", err
	}
	layer, err := imagetest.TarDir(root)
	if err != nil {
		return "", err
	}
	layout := filepath.Join(dir, "layout")
	if _, err := writeImage(layout, [][]byte{layer}, true); err != nil {
		return "", err
	}
	archive, err := imagetest.TarDir(layout)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "image.tar")
	return path, os.WriteFile(path, archive, 0o644)
}

// ctrTimes are the times of one run: how long ctr took, how long until
// the container's first output reached it, and when ctr began and ended
// (CLOCK_MONOTONIC, ns).
type ctrTimes struct {
	whole, first time.Duration
	from, to     int64
}

// ctrOnce runs one container with rt and returns its times.
func ctrOnce(ctx context.Context, c *containerd, rt *ctrRuntime, fifos, id string) (t ctrTimes, err error) {
	c.ids = append(c.ids, id)
	cmd := c.ctr(ctx, append([]string{"run", "--rm", "--fifo-dir", fifos, "--runc-binary", rt.binary, "--runc-root", rt.root,
		ctrImage, id}, ctrArgs...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return t, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.from = monotonicNow()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return t, err
	}
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	t.first = time.Since(start)
	rest, _ := io.ReadAll(stdout)
	err = cmd.Wait()
	t.whole = time.Since(start)
	t.to = monotonicNow()
	c.reap()
	out := string(buf[:n]) + string(rest)
	if err == nil && out != "ok\n" {
		err = fmt.Errorf("the container wrote %q, not \"ok\\n\"", out)
	}
	if ctx.Err() != nil {
		return t, fmt.Errorf("%s: ctr run %s: %w", rt.Name, id, ctx.Err())
	}
	if err != nil {
		return t, fmt.Errorf("%s: ctr run %s: %w: %s%s", rt.Name, id, err, strings.TrimSpace(stderr.String()), c.logTail())
	}
	return t, nil
}

// save writes ctr.md and ctr.json to o.out and, with o.readme, the table
// to the README.
func (rep *ctrReport) save(o *options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	rep.markdown(&md)
	fmt.Print(md.String())
	if err := os.WriteFile(filepath.Join(o.out, "ctr.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "ctr.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(o.out, "ctr.{md,json}"))
	if o.readme != "" {
		if err := updateReadmeBetween(o.readme, ctrReadmeBegin, ctrReadmeEnd, md.String()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.readme)
	}
	return nil
}

// ctrStats are the figures of one row of the table, in milliseconds.
type ctrStats struct {
	wholeP50, wholeP90, firstP50, firstP90, afterP50 float64
}

func (r *ctrResult) stats() ctrStats {
	whole, first := slices.Sorted(slices.Values(r.Whole)), slices.Sorted(slices.Values(r.First))
	after := make([]float64, len(r.Whole))
	for i := range r.Whole {
		after[i] = r.Whole[i] - r.First[i]
	}
	return ctrStats{
		wholeP50: percentile(whole, 50), wholeP90: percentile(whole, 90),
		firstP50: percentile(first, 50), firstP90: percentile(first, 90),
		afterP50: median(after),
	}
}

// markdown writes the table and what it measured.
func (rep *ctrReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "Measured %s on %s, load average %s when it began: `ctr run --rm IMAGE ID %s` through %s's runc shim, "+
		"%d runs with each runtime, alternating (the first of each pair changes every time) after %d of each to warm up, from a private containerd "+
		"whose image is a one-layer busybox root (%s) built and imported by the harness (overlayfs snapshotter). "+
		"Whole: from ctr's start to its exit; first output: until the container's `ok` reached ctr's standard output (the container made and started); "+
		"after: the rest (the command's exit, delete, the snapshot's removal, ctr's end), the median of each run's difference.\n\n",
		rep.Date.UTC().Format("2006-01-02 15:04 MST"), rep.Host, rep.Load, strings.Join(ctrArgs, " "), rep.Containerd,
		rep.Runs, ctrWarmUp, rep.Busybox)
	fmt.Fprintln(w, "| runtime | whole p50 ms | p90 ms | first output p50 ms | p90 ms | after p50 ms |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	var stats []ctrStats
	for _, r := range rep.Results {
		s := r.stats()
		stats = append(stats, s)
		fmt.Fprintf(w, "| %s (%s) | %.1f | %.1f | %.1f | %.1f | %.1f |\n", r.Name, r.Version, s.wholeP50, s.wholeP90, s.firstP50, s.firstP90, s.afterP50)
	}
	if len(stats) == 2 {
		a, b := stats[1], stats[0]
		q := func(x, y float64) string {
			if y == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f×", x/y)
		}
		fmt.Fprintf(w, "| %s / %s | %s | %s | %s | %s | %s |\n", rep.Results[1].Name, rep.Results[0].Name,
			q(a.wholeP50, b.wholeP50), q(a.wholeP90, b.wholeP90), q(a.firstP50, b.firstP50), q(a.firstP90, b.firstP90), q(a.afterP50, b.afterP50))
	}
	rep.calls(w)
}

// ctrMainCalls are the calls a ctr run --rm makes, in their order, with
// the table's names.
var ctrMainCalls = []struct{ key, name string }{
	{"create", "create"}, {"start", "start"}, {"delete", "delete"}, {"delete 2", "delete again (the shim's cleanup)"},
}

// calls writes the split of the runs into the runtime's calls.
func (rep *ctrReport) calls(w io.Writer) {
	if rep.Calls == "" && !slices.ContainsFunc(rep.Results, func(r *ctrResult) bool { return len(r.CallsTotal) > 0 }) {
		return
	}
	fmt.Fprintln(w)
	if rep.Calls != "" {
		fmt.Fprintf(w, "The runtime's calls are not split out: %s.\n", rep.Calls)
		return
	}
	fmt.Fprintln(w, "The same runs split by the runtime's calls, each a process the shim started, from its exec to its exit "+
		"(the kernel's process events), medians in ms; the rest is each run's whole less its calls: containerd, the shim, ctr, and the waits between them. "+
		"stockade's monitor, which create starts and which ends with the container's command, is the process the shim waits for.")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| runtime |")
	for _, c := range ctrMainCalls {
		fmt.Fprintf(w, " %s |", c.name)
	}
	fmt.Fprintln(w, " calls in all | the rest | monitor |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("--:|", len(ctrMainCalls)+3))
	other := map[string]int{}
	for _, r := range rep.Results {
		fmt.Fprintf(w, "| %s |", r.Name)
		for _, c := range ctrMainCalls {
			fmt.Fprintf(w, " %s |", num(median(r.Calls[c.key]), "%.1f"))
		}
		rest := make([]float64, 0, len(r.Whole))
		for i := range min(len(r.Whole), len(r.CallsTotal)) {
			rest = append(rest, r.Whole[i]-r.CallsTotal[i])
		}
		fmt.Fprintf(w, " %s | %s | %s |\n", num(median(r.CallsTotal), "%.1f"), num(median(rest), "%.1f"), num(median(r.Monitor), "%.1f"))
		for name, ds := range r.Calls {
			if !slices.ContainsFunc(ctrMainCalls, func(c struct{ key, name string }) bool { return c.key == name }) {
				other[r.Name+" "+name] += len(ds)
			}
		}
	}
	if len(other) == 0 {
		fmt.Fprintf(w, "\nNo other calls (state, kill) in %d runs of each.\n", rep.Runs)
		return
	}
	var list []string
	for _, k := range slices.Sorted(maps.Keys(other)) {
		list = append(list, fmt.Sprintf("%s %d", k, other[k]))
	}
	fmt.Fprintf(w, "\nOther calls in %d runs of each: %s.\n", rep.Runs, strings.Join(list, ", "))
}
