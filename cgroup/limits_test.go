//go:build linux

package cgroup

import (
	"errors"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allControllers(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	v1Host = facts{
		mode:        Legacy,
		controllers: allControllers("memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "blkio", "devices"),
		cpus:        "0-3", mems: "0",
		swapLimit: true, ioWeight: "blkio.bfq.weight",
	}
	v2Host = facts{
		mode:        Unified,
		controllers: allControllers("memory", "pids", "cpu", "cpuset", "io"),
		cpus:        "0-1,4", mems: "0-1",
		swapLimit: true, ioWeight: "io.weight",
	}
)

func TestValidate(t *testing.T) {
	with := func(f facts, change func(*facts)) facts {
		f.controllers = allControllers()
		for c := range v1Host.controllers {
			f.controllers[c] = true
		}
		change(&f)
		return f
	}
	noMemory := with(v1Host, func(f *facts) { delete(f.controllers, "memory") })
	noSwapAccounting := with(v1Host, func(f *facts) { f.swapLimit, f.swapOn = false, true })
	noSwapAtAll := with(v1Host, func(f *facts) { f.swapLimit, f.swapOn = false, false })
	noIOWeight := with(v1Host, func(f *facts) { f.ioWeight = "" })
	v2Busy := with(v2Host, func(f *facts) {
		f.controllers = allControllers()
		f.controllersNote = "the cgroup /sys/fs/cgroup/user.slice holds processes"
	})

	tests := []struct {
		name  string
		cfg   Config
		host  facts
		field string // "" means valid
		err   error
	}{
		{"zero config is valid", Config{}, v1Host, "", nil},
		{"zero config is valid on v2", Config{}, v2Host, "", nil},
		{"everything set", Config{Parent: "jobs/a", Limits: Limits{Memory: 64 << 20, Swap: 1 << 20, CPU: 1.5, CPUWeight: 200, Pids: 100, CPUs: "0-1,3", Mems: "0", IOWeight: 500}}, v1Host, "", nil},
		{"everything set on v2", Config{Parent: "/system/jobs", Limits: Limits{Memory: 64 << 20, Swap: SwapUnlimited, CPU: 0.01, CPUWeight: 1, Pids: 1, CPUs: "4", Mems: "1", IOWeight: 10000}}, v2Host, "", nil},
		{"memory at the minimum", Config{Limits: Limits{Memory: MinMemory}}, v1Host, "", nil},

		{"memory below the minimum", Config{Limits: Limits{Memory: MinMemory - 1}}, v1Host, "Limits.Memory", ErrInvalidConfig},
		{"negative memory", Config{Limits: Limits{Memory: -1}}, v1Host, "Limits.Memory", ErrInvalidConfig},
		{"swap without memory", Config{Limits: Limits{Swap: 1 << 20}}, v1Host, "Limits.Swap", ErrInvalidConfig},
		{"swap below unlimited", Config{Limits: Limits{Memory: 64 << 20, Swap: -2}}, v1Host, "Limits.Swap", ErrInvalidConfig},
		{"memory plus swap overflows", Config{Limits: Limits{Memory: math.MaxInt64 - 10, Swap: 11}}, v1Host, "Limits.Swap", ErrInvalidConfig},
		{"NaN CPU", Config{Limits: Limits{CPU: math.NaN()}}, v1Host, "Limits.CPU", ErrInvalidConfig},
		{"infinite CPU", Config{Limits: Limits{CPU: math.Inf(1)}}, v1Host, "Limits.CPU", ErrInvalidConfig},
		{"negative CPU", Config{Limits: Limits{CPU: -1}}, v1Host, "Limits.CPU", ErrInvalidConfig},
		{"CPU below the kernel minimum", Config{Limits: Limits{CPU: 0.005}}, v1Host, "Limits.CPU", ErrInvalidConfig},
		{"CPU weight too large", Config{Limits: Limits{CPUWeight: 10001}}, v1Host, "Limits.CPUWeight", ErrInvalidConfig},
		{"negative pids", Config{Limits: Limits{Pids: -1}}, v1Host, "Limits.Pids", ErrInvalidConfig},
		{"pids above the kernel's", Config{Limits: Limits{Pids: MaxPids + 1}}, v1Host, "Limits.Pids", ErrInvalidConfig},
		{"pids far above the kernel's", Config{Limits: Limits{Pids: 1<<62 + 1}}, v1Host, "Limits.Pids", ErrInvalidConfig},
		{"IO weight too large", Config{Limits: Limits{IOWeight: 10001}}, v1Host, "Limits.IOWeight", ErrInvalidConfig},
		{"cpus garbage", Config{Limits: Limits{CPUs: "zero"}}, v1Host, "Limits.CPUs", ErrInvalidConfig},
		{"cpus backwards range", Config{Limits: Limits{CPUs: "3-1"}}, v1Host, "Limits.CPUs", ErrInvalidConfig},
		{"cpus empty element", Config{Limits: Limits{CPUs: "0,,1"}}, v1Host, "Limits.CPUs", ErrInvalidConfig},
		{"cpus huge number", Config{Limits: Limits{CPUs: "0-99999999"}}, v1Host, "Limits.CPUs", ErrInvalidConfig},
		{"cpus with spaces", Config{Limits: Limits{CPUs: "0, 1"}}, v1Host, "Limits.CPUs", ErrInvalidConfig},
		{"cpu outside the host", Config{Limits: Limits{CPUs: "0-4"}}, v1Host, "Limits.CPUs", ErrInvalidConfig},
		{"cpu in a gap of the host's list", Config{Limits: Limits{CPUs: "2"}}, v2Host, "Limits.CPUs", ErrInvalidConfig},
		{"mem node outside the host", Config{Limits: Limits{Mems: "1"}}, v1Host, "Limits.Mems", ErrInvalidConfig},
		{"parent with dot-dot", Config{Parent: "a/../../b"}, v1Host, "Parent", ErrInvalidConfig},
		{"parent leaving the own cgroup", Config{Parent: "../b"}, v1Host, "Parent", ErrInvalidConfig},
		{"parent not clean", Config{Parent: "a//b"}, v1Host, "Parent", ErrInvalidConfig},
		{"parent with trailing slash", Config{Parent: "a/"}, v1Host, "Parent", ErrInvalidConfig},
		{"parent with newline", Config{Parent: "a\nb"}, v1Host, "Parent", ErrInvalidConfig},
		{"parent named like a group", Config{Parent: "x/sb-1-2-3-4"}, v1Host, "Parent", ErrInvalidConfig},

		{"no cgroups at all", Config{}, facts{mode: Unavailable}, "Limits", ErrNotSupported},
		{"memory controller missing", Config{Limits: Limits{Memory: 64 << 20}}, noMemory, "Limits.Memory", ErrNotSupported},
		{"memory controller missing is fine without a memory limit", Config{Limits: Limits{Pids: 5}}, noMemory, "", nil},
		{"swap on without accounting", Config{Limits: Limits{Memory: 64 << 20}}, noSwapAccounting, "Limits.Swap", ErrNotSupported},
		{"swap on without accounting, unlimited swap accepted", Config{Limits: Limits{Memory: 64 << 20, Swap: SwapUnlimited}}, noSwapAccounting, "", nil},
		{"no swap accounting but no swap either", Config{Limits: Limits{Memory: 64 << 20}}, noSwapAtAll, "", nil},
		{"no IO weight file", Config{Limits: Limits{IOWeight: 100}}, noIOWeight, "Limits.IOWeight", ErrNotSupported},
		{"v2 parent cannot pass controllers", Config{Limits: Limits{Pids: 10}}, v2Busy, "Limits.Pids", ErrNotSupported},
		{"v2 CPU weight needs cpu", Config{Limits: Limits{CPUWeight: 10}}, v2Busy, "Limits.CPUWeight", ErrNotSupported},
		{"v2 IO weight needs io", Config{Limits: Limits{IOWeight: 10}}, v2Busy, "Limits.IOWeight", ErrNotSupported},
		{"v2 cpuset needs cpuset", Config{Limits: Limits{Mems: "0"}}, v2Busy, "Limits.Mems", ErrNotSupported},
		{"v2 without controllers is fine without limits", Config{}, v2Busy, "", nil},

		{"CPU period at the kernel's least", Config{Limits: Limits{CPU: 1, CPUPeriod: MinCPUPeriod}}, v1Host, "", nil},
		{"CPU period at the kernel's most", Config{Limits: Limits{CPU: 0.001, CPUPeriod: MaxCPUPeriod}}, v2Host, "", nil},
		{"CPU period below the kernel's", Config{Limits: Limits{CPU: 2, CPUPeriod: 999 * time.Microsecond}}, v1Host, "Limits.CPUPeriod", ErrInvalidConfig},
		{"CPU period above the kernel's", Config{Limits: Limits{CPU: 2, CPUPeriod: time.Second + time.Microsecond}}, v1Host, "Limits.CPUPeriod", ErrInvalidConfig},
		{"CPU period negative", Config{Limits: Limits{CPU: 2, CPUPeriod: -time.Millisecond}}, v1Host, "Limits.CPUPeriod", ErrInvalidConfig},
		{"CPU period not in microseconds", Config{Limits: Limits{CPU: 2, CPUPeriod: 2*time.Millisecond + 1}}, v1Host, "Limits.CPUPeriod", ErrInvalidConfig},
		{"CPU period without CPU", Config{Limits: Limits{CPUPeriod: 50 * time.Millisecond}}, v1Host, "Limits.CPUPeriod", ErrInvalidConfig},
		{"CPU quota below 1 ms of its period", Config{Limits: Limits{CPU: 0.5, CPUPeriod: time.Millisecond}}, v1Host, "Limits.CPU", ErrInvalidConfig},
		{"CPU quota of 1 ms over a long period", Config{Limits: Limits{CPU: 0.002, CPUPeriod: 500 * time.Millisecond}}, v1Host, "", nil},
		{"CPU period needs cpu", Config{Limits: Limits{CPU: 1, CPUPeriod: 10 * time.Millisecond}}, v2Busy, "Limits.CPU", ErrNotSupported},

		{"device rules", Config{Limits: Limits{Devices: []DeviceRule{
			{Type: "a", Major: AnyDevice, Minor: AnyDevice, Access: "rwm"},
			{Allow: true, Type: "c", Major: 1, Minor: 3, Access: "rw"},
			{Allow: true, Type: "b", Major: AnyDevice, Minor: 0, Access: "m"},
			{Type: "c", Major: maxMajor, Minor: maxMinor, Access: "mwr"},
		}}}, v1Host, "", nil},
		{"device type unknown", Config{Limits: Limits{Devices: []DeviceRule{{Type: "p", Major: 1, Minor: 3, Access: "r"}}}}, v1Host, "Limits.Devices[0].Type", ErrInvalidConfig},
		{"device type empty", Config{Limits: Limits{Devices: []DeviceRule{{Major: 1, Minor: 3, Access: "r"}}}}, v1Host, "Limits.Devices[0].Type", ErrInvalidConfig},
		{"device access empty", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3}}}}, v1Host, "Limits.Devices[0].Access", ErrInvalidConfig},
		{"device access unknown", Config{Limits: Limits{Devices: []DeviceRule{
			{Allow: true, Type: "c", Major: 1, Minor: 3, Access: "r"},
			{Allow: true, Type: "c", Major: 1, Minor: 5, Access: "r"},
			{Allow: true, Type: "c", Major: 1, Minor: 7, Access: "rx"},
		}}}, v1Host, "Limits.Devices[2].Access", ErrInvalidConfig},
		{"device access twice", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "rr"}}}}, v1Host, "Limits.Devices[0].Access", ErrInvalidConfig},
		{"device access too long", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "rwmr"}}}}, v1Host, "Limits.Devices[0].Access", ErrInvalidConfig},
		{"device major negative", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: -2, Minor: 3, Access: "r"}}}}, v1Host, "Limits.Devices[0].Major", ErrInvalidConfig},
		{"device major too large", Config{Limits: Limits{Devices: []DeviceRule{{Type: "b", Major: maxMajor + 1, Minor: 3, Access: "r"}}}}, v1Host, "Limits.Devices[0].Major", ErrInvalidConfig},
		{"device minor too large", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: maxMinor + 1, Access: "r"}}}}, v1Host, "Limits.Devices[0].Minor", ErrInvalidConfig},
		{"device type a with numbers", Config{Limits: Limits{Devices: []DeviceRule{{Type: "a", Major: 1, Minor: AnyDevice, Access: "rwm"}}}}, v1Host, "Limits.Devices[0].Major", ErrInvalidConfig},
		{"device type a with less access", Config{Limits: Limits{Devices: []DeviceRule{{Type: "a", Major: AnyDevice, Minor: AnyDevice, Access: "r"}}}}, v1Host, "Limits.Devices[0].Access", ErrInvalidConfig},
		{"device rules need the devices controller", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "r"}}}}, with(v1Host, func(f *facts) { delete(f.controllers, "devices") }), "Limits.Devices", ErrNotSupported},
		{"device rules are refused on v2", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "r"}}}}, v2Host, "Limits.Devices", ErrNotSupported},
		{"bad device rules are refused on v2 by field", Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "x"}}}}, v2Host, "Limits.Devices[0].Access", ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(tt.cfg, tt.host)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, "error: %v", err)
			assert.ErrorIs(t, err, tt.err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			if tt.err == ErrNotSupported {
				// What the host lacks is named by a *FeatureError.
				var fe *FeatureError
				require.ErrorAs(t, err, &fe)
				assert.NotEmpty(t, fe.Feature)
			}
			assert.Contains(t, err.Error(), tt.field+": ")
			if tt.host.controllersNote != "" {
				assert.Contains(t, err.Error(), tt.host.controllersNote)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := validate(Config{Limits: Limits{Memory: 1, CPU: -1, Pids: -1, CPUs: "9"}}, v1Host)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ConfigError
		require.True(t, errors.As(e, &ce))
		fields = append(fields, ce.Field)
	}
	assert.Equal(t, []string{"Limits.Memory", "Limits.CPU", "Limits.Pids", "Limits.CPUs"}, fields)
}

func TestDeviceWrites(t *testing.T) {
	got := deviceWrites([]DeviceRule{
		{Type: "a", Major: AnyDevice, Minor: AnyDevice, Access: "rwm"},
		{Allow: true, Type: "c", Major: 10, Minor: 229, Access: "rwm"},
		{Allow: true, Type: "b", Major: 8, Minor: AnyDevice, Access: "r"},
		{Type: "c", Major: 1, Minor: 3, Access: "w"},
	})
	assert.Equal(t, [][2]string{
		{"devices.deny", "a *:* rwm"},
		{"devices.allow", "c 10:229 rwm"},
		{"devices.allow", "b 8:* r"},
		{"devices.deny", "c 1:3 w"},
	}, got)
}

func TestCFSQuota(t *testing.T) {
	for _, tt := range []struct {
		l             Limits
		quota, period int64
	}{
		{Limits{CPU: 0.5}, 50000, 100000},
		{Limits{CPU: 0.1, CPUPeriod: 500 * time.Millisecond}, 50000, 500000},
		{Limits{CPU: 2, CPUPeriod: 500 * time.Millisecond}, 1000000, 500000},
		{Limits{CPU: 1, CPUPeriod: time.Millisecond}, 1000, 1000},
	} {
		q, p := cfsQuota(tt.l)
		assert.Equal(t, [2]int64{tt.quota, tt.period}, [2]int64{q, p}, "%+v", tt.l)
	}
}

func TestParseList(t *testing.T) {
	r, err := parseList("0-3,6,8-9")
	require.NoError(t, err)
	assert.Equal(t, [][2]int{{0, 3}, {6, 6}, {8, 9}}, r)
	for _, bad := range []string{"", ",", "-1", "1-", "a", "1-2-3", "65536", "+1"} {
		_, err := parseList(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestWeightConversions(t *testing.T) {
	assert.Equal(t, uint64(1024), cpuShares(100), "the defaults must match")
	assert.Equal(t, uint64(10), cpuShares(1))
	assert.Equal(t, uint64(102400), cpuShares(10000))
	assert.Equal(t, uint64(10), blkioWeight(1))
	assert.Equal(t, uint64(1000), blkioWeight(10000))
}

func TestNames(t *testing.T) {
	name, err := newName()
	require.NoError(t, err)
	// The leak check of internal/testutil relies on this prefix.
	assert.Regexp(t, `^sb-`+strconv.Itoa(os.Getpid())+`-\d+-\d+-\d+$`, name)
	o, ok := parseName(name)
	require.True(t, ok)
	me, err := self()
	require.NoError(t, err)
	assert.Equal(t, me, o)
	assert.True(t, o.alive(me))

	other, err := newName()
	require.NoError(t, err)
	assert.NotEqual(t, name, other)

	reused := me
	reused.start++
	assert.False(t, reused.alive(me), "same pid, other start time: the owner died and its pid was reused")
	foreign := me
	foreign.pidNS++
	foreign.start++
	assert.True(t, foreign.alive(me), "an owner in another pid namespace cannot be judged and counts as alive")

	for _, bad := range []string{"stockade", "sb-", "sb-1-2-3", "sb-1-2-3-4-5", "sb-x-2-3-4", "sb-0-2-3-4", "sb--1-2-3-4", "sb-99999999-2-3-4"} {
		_, ok := parseName(bad)
		assert.False(t, ok, bad)
	}
}

func TestOwnPathAndParent(t *testing.T) {
	assert.Equal(t, "/process_api/abc", ownPath("/process_api/abc", "/"))
	assert.Equal(t, "", ownPath("/", "/"))
	assert.Equal(t, "/inner", ownPath("/docker/123/inner", "/docker/123"))
	assert.Equal(t, "", ownPath("/docker/123", "/docker/123"))
	assert.Equal(t, "/docker/1234", ownPath("/docker/1234", "/docker/123"), "a root that is only a string prefix does not count")

	h := &hierarchy{mount: "/sys/fs/cgroup/memory", own: "/user/me"}
	assert.Equal(t, "/user/me/stockade", resolveParent("", h))
	assert.Equal(t, "/user/me/jobs/a", resolveParent("jobs/a", h))
	assert.Equal(t, "/jobs", resolveParent("/jobs", h))
	assert.Equal(t, "", resolveParent("/", h))
	assert.Equal(t, "/stockade", resolveParent("", &hierarchy{}))
}

func TestSplitExact(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		total, user, sys, wantUser, wantSys time.Duration
	}{
		{303 * ms, 300 * ms, 0, 303 * ms, 0},
		{100 * ms, 60 * ms, 20 * ms, 75 * ms, 25 * ms},
		{5 * ms, 0, 0, 5 * ms, 0},
		{0, 4 * ms, 4 * ms, 0, 0},
	} {
		u, s := splitExact(c.total, c.user, c.sys)
		assert.Equal(t, c.wantUser, u, "%+v", c)
		assert.Equal(t, c.wantSys, s, "%+v", c)
		assert.Equal(t, c.total, u+s)
	}
}
