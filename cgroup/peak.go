//go:build linux

package cgroup

import (
	"errors"
	"os"
	"strings"

	"github.com/stockade/stockade/internal/linux"
)

// MemoryPeak returns nil when the kernel keeps an exact memory high-water
// mark for the groups this package creates (memory.peak, cgroup v2 from
// Linux 5.19), and otherwise an error that says what Stats.MemoryPeak is
// instead.
func MemoryPeak() error {
	h, err := probeHost()
	if err != nil {
		return err
	}
	switch {
	case h.v1 != nil:
		return errors.New("cgroup v1 has no memory.peak; Stats.MemoryPeak reads memory.max_usage_in_bytes, which is exact too")
	case h.v2 == nil:
		return errors.New("no cgroup file system is mounted at /sys/fs/cgroup")
	}
	b, err := os.ReadFile(h.v2.dir(h.v2.own) + "/cgroup.controllers")
	if err != nil {
		return err
	}
	if !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ") {
		return errors.New("the memory controller is not available to the caller's cgroup")
	}
	// The root cgroup has no memory files; below it memory.peak exists
	// where the kernel keeps it.
	if h.v2.own != "" {
		if exists(h.v2.dir(h.v2.own) + "/memory.peak") {
			return nil
		}
		return errors.New("this kernel keeps no memory.peak (Linux 5.19); Stats.MemoryPeak is the largest usage Stats has seen, a lower bound")
	}
	if linux.KernelAtLeast(5, 19) {
		return nil
	}
	return errors.New("this kernel keeps no memory.peak (Linux 5.19); Stats.MemoryPeak is the largest usage Stats has seen, a lower bound")
}
