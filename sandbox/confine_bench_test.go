//go:build linux

package sandbox

import (
	"context"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stockade/stockade/internal/testutil"
)

// BenchmarkConfine measures what the defences cost a start: the init's
// confine stage (close-on-exec of stray descriptors, the bounding and
// inheritable sets, no_new_privs, the Landlock domain and the seccomp
// filter with TSYNC), taken from the init's own marks, one sandbox at a
// time. The compiled filter comes from the cache, so compiling is not in
// it. "bare" has no filter and no Landlock (capabilities are always
// dropped), "default" is the zero Security, and "caps+policy" keeps a
// capability and extends the default policy, which compiles a filter of
// its own once. It reports the median and 90th percentile of the stage in
// microseconds.
func BenchmarkConfine(b *testing.B) {
	testutil.RequireRoot(b)
	for _, bc := range []struct {
		name string
		sec  Security
	}{
		{"bare", Security{SeccompUnconfined: true, Landlock: Landlock{Disabled: true}}},
		{"seccomp", Security{Landlock: Landlock{Disabled: true}}},
		{"landlock", Security{SeccompUnconfined: true}},
		{"default", Security{}},
		{"caps+policy", Security{
			Capabilities:  []string{"CAP_NET_BIND_SERVICE"},
			SeccompExtend: true,
			Seccomp:       &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{Names: []string{"acct"}, Action: specs.ActKillProcess}}},
			Landlock:      Landlock{BindTCP: []uint16{8080}, ConnectTCP: []uint16{443}},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{Args: []string{"/bin/true"}, Security: bc.sec}
			var confine []time.Duration
			for b.Loop() {
				sb := New(cfg)
				if err := sb.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				if _, err := sb.Wait(); err != nil {
					b.Fatal(err)
				}
				for _, st := range sb.times.stages() {
					if st.name == "confine" {
						confine = append(confine, st.d)
					}
				}
			}
			if len(confine) == 0 {
				b.Fatal("the init reported no confine stage")
			}
			slices.Sort(confine)
			b.ReportMetric(float64(confine[len(confine)/2].Nanoseconds())/1000, "confine-p50-µs")
			b.ReportMetric(float64(confine[len(confine)*9/10].Nanoseconds())/1000, "confine-p90-µs")
			reportRate(b)
		})
	}
}
