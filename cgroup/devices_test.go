//go:build linux

package cgroup

import (
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openIn runs the "open" helper in g on path and reports whether the
// kernel let it open the file.
func openIn(t *testing.T, g *Group, path string) bool {
	t.Helper()
	h := startHelper(t, g, "open", "OPEN="+path)
	err := h.wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 5 {
		return false
	}
	require.NoError(t, err, "open %s", path)
	return true
}

func TestDeviceRulesApplyInOrder(t *testing.T) {
	requireCgroups(t)
	rules := []DeviceRule{
		{Type: "a", Major: AnyDevice, Minor: AnyDevice, Access: "rwm"},
		{Allow: true, Type: "c", Major: 1, Minor: 5, Access: "rwm"}, // /dev/zero
		{Allow: true, Type: "c", Major: 10, Minor: 229, Access: "rwm"},
		{Allow: true, Type: "b", Major: 8, Minor: 20, Access: "rw"},
		{Allow: true, Type: "c", Major: 1, Minor: 7, Access: "r"}, // /dev/full
		{Type: "c", Major: 1, Minor: 7, Access: "r"},              // and denied again
		{Allow: true, Type: "c", Major: 136, Minor: AnyDevice, Access: "rwm"},
	}
	if DetectMode() == Unified {
		_, err := Create(Config{Limits: Limits{Devices: rules}})
		var fe *FeatureError
		require.ErrorAs(t, err, &fe)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "Limits.Devices", ce.Field)
		assert.ErrorIs(t, err, ErrNotSupported)
		return
	}
	g := newGroup(t, Config{Limits: Limits{Devices: rules}})
	assert.Equal(t, "c 1:5 rwm\nc 10:229 rwm\nb 8:20 rw\nc 136:* rwm", readBack(t, g, "devices.list"))
	assert.True(t, openIn(t, g, "/dev/zero"), "allowed")
	assert.False(t, openIn(t, g, "/dev/null"), "denied by the first rule")
	assert.False(t, openIn(t, g, "/dev/full"), "allowed, then denied")

	// Without a rule for every device first, the rules change the parent's
	// default, which allows everything: a deny is an exception to it.
	g = newGroup(t, Config{Limits: Limits{Devices: []DeviceRule{{Type: "c", Major: 1, Minor: 3, Access: "rwm"}}}})
	assert.Equal(t, "a *:* rwm", readBack(t, g, "devices.list"))
	assert.False(t, openIn(t, g, "/dev/null"))
	assert.True(t, openIn(t, g, "/dev/zero"))
}

func TestCPUPeriod(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Config{Limits: Limits{CPU: 0.5, CPUPeriod: 500 * time.Millisecond}})
	if DetectMode() == Unified {
		assert.Equal(t, "250000 500000", readBack(t, g, "cpu.max"))
		return
	}
	assert.Equal(t, "500000", readBack(t, g, "cpu.cfs_period_us"))
	assert.Equal(t, "250000", readBack(t, g, "cpu.cfs_quota_us"))
	g = newGroup(t, Config{Limits: Limits{CPU: 3, CPUPeriod: time.Millisecond}})
	assert.Equal(t, "1000", readBack(t, g, "cpu.cfs_period_us"))
	assert.Equal(t, "3000", readBack(t, g, "cpu.cfs_quota_us"))
}
