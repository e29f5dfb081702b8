//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/stockade/stockade/cgroup"
)

// Cleanup removes what the sandboxes of processes killed by SIGKILL left on
// the host: their control groups under the default parent and each of
// cgroupParents, and their links (see netns.Cleanup). It leaves running
// owners' sandboxes alone, so a service may call it when it starts.
func Cleanup(ctx context.Context, cgroupParents ...string) error {
	parents := append([]string{""}, cgroupParents...)
	var errs []error
	for i, p := range parents {
		if i > 0 && p == "" {
			continue
		}
		if _, err := cgroup.Cleanup(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("stockade: clean up cgroups under %q: %w", p, err))
		}
	}
	if err := cleanupNetwork(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
