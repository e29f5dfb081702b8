//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"strconv"
)

// setOOMScoreAdj gives the process pid, which the command and every
// process it starts inherit it from, the OOM score adjustment v (0: the
// caller's, left alone).
func setOOMScoreAdj(pid, v int) error {
	if v == 0 {
		return nil
	}
	err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(v)), 0)
	if err != nil {
		return setupErr("oom-score-adj", strconv.Itoa(v), err)
	}
	return nil
}
