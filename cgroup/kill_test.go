//go:build linux

package cgroup

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInGroup(t *testing.T) {
	const v1 = "9:name=systemd:/\n8:pids:/stockade/sb-1-2-3-4\n4:memory:/p/stockade/sb-1-2-3-4/inner\n0::/\n"
	assert.True(t, inGroup(v1, "sb-1-2-3-4"))
	assert.False(t, inGroup(v1, "sb-1-2-3-40"))
	assert.False(t, inGroup(v1, "sb-1-2-3"))
	assert.True(t, inGroup("0::/stockade/sb-5-6-7-8\n", "sb-5-6-7-8"))
	assert.False(t, inGroup("0::/stockade/sb-5-6-7-8x\n", "sb-5-6-7-8"))
}
