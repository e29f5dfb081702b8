//go:build linux

package seccomp

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkCompileDefault measures what DefaultFilter pays once per
// process: building the default policy from Docker's profile and
// compiling it. It reports the program's length and the instructions a
// hot system call (read) and the longest path execute.
func BenchmarkCompileDefault(b *testing.B) {
	var f *Filter
	for b.Loop() {
		p, err := DefaultPolicy(ProfileOptions{Kernel: "6.8"})
		if err != nil {
			b.Fatal(err)
		}
		if f, err = Compile(p); err != nil {
			b.Fatal(err)
		}
	}
	native, err := archFor("")
	if err != nil {
		b.Skip(err)
	}
	read, _ := native.number("read")
	_, readPath := step(f, seccompData{nr: read, arch: native.auditArch})
	longest := 0
	for nr := range uint32(1024) {
		for _, args := range [][6]uint64{{}, {unix.AF_VSOCK, unix.TIOCSTI}, {threadFlags}, {unix.AF_MCTP}} {
			_, n := step(f, seccompData{nr: nr, arch: native.auditArch, args: args})
			longest = max(longest, n)
		}
	}
	b.ReportMetric(float64(f.Len()), "insns")
	b.ReportMetric(float64(readPath), "read-path-insns")
	b.ReportMetric(float64(longest), "max-path-insns")
}

// BenchmarkDefaultFilter measures the cached path every sandbox start
// takes in the parent.
func BenchmarkDefaultFilter(b *testing.B) {
	if _, err := DefaultFilter(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		DefaultFilter()
	}
}

// BenchmarkUnmarshal measures what an init stage pays to receive the
// compiled filter from its parent.
func BenchmarkUnmarshal(b *testing.B) {
	f, err := DefaultFilter()
	if err != nil {
		b.Fatal(err)
	}
	data, err := f.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	var g Filter
	for b.Loop() {
		if err := g.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad measures Load of the default filter on one thread, as the
// init stage's locked thread does it. Filters cannot be removed, so each
// load runs on a fresh locked goroutine whose thread exits afterwards and
// takes its filter with it; only the Load call is timed.
func BenchmarkLoad(b *testing.B) {
	requireSeccomp(b)
	f, err := DefaultFilter()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for range b.N {
		errc := make(chan error)
		go func() {
			// Never unlocked: the thread ends with this goroutine.
			runtime.LockOSThread()
			if err := setNoNewPrivs(); err != nil {
				errc <- err
				return
			}
			start := time.Now()
			err := Load(f, 0)
			total += time.Since(start)
			errc <- err
		}()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
}

// BenchmarkLoadTSync measures Load with FlagTSync, which the init stage
// uses, in a helper process whose every thread takes the filter. The
// helper times its own loads; starting it is not counted.
func BenchmarkLoadTSync(b *testing.B) {
	requireSeccomp(b)
	var total int64
	for done := 0; done < b.N; {
		// A fresh helper process for every load, as each init stage is;
		// the helper times the Load call alone.
		batch := 1
		out, state := helper(b, "loadcost", fmt.Sprintf("%s=%d", helperCountEnv, batch))
		if !state.Success() {
			b.Fatalf("helper: %v", state)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			b.Fatalf("helper output %q", out)
		}
		total += ns
		done += batch
	}
	b.ReportMetric(float64(total)/float64(b.N), "ns/op")
}

// BenchmarkFilteredSyscall measures what the default filter adds to a
// system call the kernel's seccomp cache answers (getppid) and to one the
// filter must run for (ioctl), in a helper process.
func BenchmarkFilteredSyscall(b *testing.B) {
	requireSeccomp(b)
	n := max(b.N, 1000)
	out, state := helper(b, "syscallcost", fmt.Sprintf("%s=%d", helperCountEnv, n))
	if !state.Success() {
		b.Fatalf("helper: %v", state)
	}
	var g0, i0, g1, i1 float64
	if _, err := fmt.Sscan(string(out), &g0, &i0, &g1, &i1); err != nil {
		b.Fatalf("helper output %q: %v", out, err)
	}
	per := float64(n)
	b.ReportMetric(g0/per, "getppid-ns")
	b.ReportMetric(g1/per, "getppid-filtered-ns")
	b.ReportMetric(i0/per, "ioctl-ns")
	b.ReportMetric(i1/per, "ioctl-filtered-ns")
	b.ReportMetric(0, "ns/op")
}
