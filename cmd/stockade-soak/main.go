// Command stockade-soak runs many sandboxes back to back and watches what
// the owning process and the host hold while it does: file descriptors,
// goroutines, OS threads, resident memory, the sandbox cgroups it owns,
// host mounts, network namespaces and zombie children. It prints a row
// every -every runs and exits with status 1 when a count ended above its
// first reading by more than the tolerance.
//
//	go run ./cmd/stockade-soak -n 10000
//
// Run it as root. The mount and network namespace counts are the host's:
// other programs that create either while it runs move them too.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/stockade/stockade/sandbox"
)

func main() {
	n := flag.Int("n", 10000, "sandboxes to run")
	conc := flag.Int("c", runtime.NumCPU(), "sandboxes run at once")
	every := flag.Int("every", 1000, "print the counts every this many runs")
	limits := flag.Bool("limits", true, "give every other sandbox a cgroup (Limits.Pids), so that cgroups are counted")
	pool := flag.Bool("pool", true, "run every fifth command through a Pool (every fifth other runs by Exec in a long-lived sandbox)")
	timeout := flag.Duration("timeout", 30*time.Second, "Timeout of each sandbox")
	tolFD := flag.Int("tol-fd", 2, "tolerated growth of open descriptors")
	tolG := flag.Int("tol-goroutines", 4, "tolerated growth of goroutines")
	tolT := flag.Int("tol-threads", 4, "tolerated growth of OS threads")
	tolRSS := flag.Int("tol-rss-mib", 32, "tolerated growth of the resident set, MiB")
	tolHost := flag.Int("tol-host", 0, "tolerated growth of host mounts and network namespaces (other programs on the host move them)")
	flag.Parse()
	if *n < 1 || *conc < 1 || *every < 1 {
		fmt.Fprintln(os.Stderr, "stockade-soak: -n, -c and -every must be positive")
		os.Exit(2)
	}
	bb, err := busybox()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stockade-soak:", err)
		os.Exit(2)
	}
	s := &soak{bb: bb, limits: *limits, timeout: *timeout}
	// A warm-up like the run, but short, starts what a process keeps for
	// good (the runtime's poller and threads at this concurrency, the
	// spawner threads, probes), so that the first reading holds them.
	if err := s.loop(*conc, 20*(*conc), *pool, nil); err > 0 {
		fmt.Fprintln(os.Stderr, "stockade-soak: the warm-up failed")
		os.Exit(1)
	}
	first := take()
	fmt.Printf("stockade-soak: %d runs, %d at once, pid %d\n", *n, *conc, os.Getpid())
	header()
	row(0, first, 0)
	start := time.Now()
	var mu sync.Mutex // serialises the rows
	failed := s.loop(*conc, *n, *pool, func(i int) {
		if i%*every == 0 {
			c := take()
			mu.Lock()
			row(i, c, time.Since(start))
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	// What was torn down last gets a moment to go before the last reading.
	var last counts
	for range 50 {
		last = take()
		if len(last.grown(first, *tolFD, *tolG, *tolT, *tolRSS, *tolHost)) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("end (after closing the pool):")
	row(*n, last, elapsed)
	fmt.Printf("stockade-soak: %d runs in %v (%.0f/s), %d failed\n", *n, elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds(), failed)
	grown := last.grown(first, *tolFD, *tolG, *tolT, *tolRSS, *tolHost)
	for _, g := range grown {
		fmt.Fprintln(os.Stderr, "stockade-soak: grew:", g)
	}
	if len(grown) > 0 || failed > 0 {
		os.Exit(1)
	}
}

// soak runs the sandboxes.
type soak struct {
	bb      string
	limits  bool
	timeout time.Duration
	pool    *sandbox.Pool
}

// loop runs n sandboxes, conc at once, with a pool of its own when pool is
// set, calls after (when not nil) after each, and returns how many failed.
func (s *soak) loop(conc, n int, pool bool, after func(i int)) int64 {
	if pool {
		var err error
		if s.pool, err = sandbox.NewPool(sandbox.Config{Timeout: s.timeout}, 2); err != nil {
			fmt.Fprintln(os.Stderr, "stockade-soak: pool:", err)
			os.Exit(1)
		}
		defer func() {
			s.pool.Close()
			s.pool = nil
		}()
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				if err := s.run(i, pool); err != nil {
					if failed.Add(1) <= 10 {
						fmt.Fprintf(os.Stderr, "run %d: %v\n", i, err)
					}
				}
				if after != nil {
					after(i)
				}
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}

// run runs the i-th sandbox: a command that exits 0, in a fresh sandbox,
// by Exec in a long-lived sandbox, or (mixed) through the pool. Any other
// outcome is an error.
func (s *soak) run(i int, mixed bool) error {
	ctx := context.Background()
	args := []string{s.bb, "true"}
	var res *sandbox.Result
	var err error
	switch {
	case mixed && i%5 == 1:
		res, err = s.pool.Run(ctx, sandbox.Cmd{Args: args})
	case i%5 == 3:
		sb := sandbox.New(sandbox.Config{Timeout: s.timeout})
		if err = sb.Start(ctx); err != nil {
			return err
		}
		res, err = sb.Exec(ctx, sandbox.Cmd{Args: args})
		if cerr := sb.Close(); err == nil {
			err = cerr
		}
	default:
		cfg := sandbox.Config{Args: args, Timeout: s.timeout}
		if s.limits && i%2 == 0 {
			cfg.Limits.Pids = 64
		}
		res, err = sandbox.New(cfg).Run(ctx)
	}
	if err != nil {
		return err
	}
	if !res.Success() {
		return fmt.Errorf("%v", res)
	}
	return nil
}

// counts is one reading of what the process and the host hold.
type counts struct {
	fds, goroutines, threads int
	rssKiB                   int
	cgroups                  int // sandbox cgroups of this process
	mounts                   int // host mount table
	netns                    int // distinct network namespaces on the host
	zombies                  int // children of this process not reaped
}

func take() counts {
	c := counts{goroutines: runtime.NumGoroutine()}
	if e, err := os.ReadDir("/proc/self/fd"); err == nil {
		c.fds = len(e) - 1 // ReadDir's own
	}
	c.threads, c.rssKiB = status()
	c.cgroups = ownCgroups()
	if m, err := mountinfo.GetMounts(nil); err == nil {
		c.mounts = len(m)
	}
	c.netns = netNamespaces()
	c.zombies = zombies()
	return c
}

func header() {
	fmt.Printf("%8s %8s %5s %10s %8s %8s %8s %7s %6s %8s\n",
		"runs", "elapsed", "fds", "goroutines", "threads", "RSS MiB", "cgroups", "mounts", "netns", "zombies")
}

func row(i int, c counts, d time.Duration) {
	fmt.Printf("%8d %8s %5d %10d %8d %8.1f %8d %7d %6d %8d\n",
		i, d.Round(time.Second), c.fds, c.goroutines, c.threads, float64(c.rssKiB)/1024, c.cgroups, c.mounts, c.netns, c.zombies)
}

// grown lists the counts of c above those of first by more than their
// tolerance.
func (c counts) grown(first counts, fd, g, t, rssMiB, host int) []string {
	var out []string
	check := func(name string, now, then, tol int) {
		if now > then+tol {
			out = append(out, fmt.Sprintf("%s: %d, %d at the start (tolerance %d)", name, now, then, tol))
		}
	}
	check("file descriptors", c.fds, first.fds, fd)
	check("goroutines", c.goroutines, first.goroutines, g)
	check("OS threads", c.threads, first.threads, t)
	check("RSS KiB", c.rssKiB, first.rssKiB, rssMiB<<10)
	check("sandbox cgroups", c.cgroups, first.cgroups, 0)
	check("host mounts", c.mounts, first.mounts, host)
	check("network namespaces", c.netns, first.netns, host)
	check("zombie children", c.zombies, first.zombies, 0)
	return out
}

// status reads the thread count and the resident set of this process.
func status() (threads, rssKiB int) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		switch k {
		case "Threads":
			threads, _ = strconv.Atoi(fields[0])
		case "VmRSS":
			rssKiB, _ = strconv.Atoi(fields[0])
		}
	}
	return threads, rssKiB
}

// ownCgroups counts the sandbox cgroups of this process, which package
// cgroup names "sb-<owner pid>-…", in every mounted hierarchy.
func ownCgroups() int {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return -1
	}
	prefix := "sb-" + strconv.Itoa(os.Getpid()) + "-"
	n := 0
	for _, m := range mounts {
		filepath.WalkDir(m.Mountpoint, func(_ string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.HasPrefix(d.Name(), prefix) {
				n++
				return filepath.SkipDir
			}
			return nil
		})
	}
	return n
}

// netNamespaces counts the distinct network namespaces that a process on
// the host is in or that a bind mount (nsfs) keeps.
func netNamespaces() int {
	seen := map[string]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + p.Name() + "/ns/net"); err == nil {
			seen[l] = true
		}
	}
	if m, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("nsfs")); err == nil {
		for _, mi := range m {
			if strings.HasPrefix(mi.Root, "net:") {
				seen[mi.Root] = true
			}
		}
	}
	return len(seen)
}

// zombies counts the children of this process that have exited and were
// not reaped.
func zombies() int {
	tasks, _ := os.ReadDir("/proc/self/task")
	n := 0
	seen := map[string]bool{}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			st, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			s := string(st)
			if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
				n++
			}
		}
	}
	return n
}

// busybox finds a static busybox for the command the sandboxes run.
func busybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no busybox: apt-get install busybox-static")
}
