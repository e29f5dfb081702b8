//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/stockade/stockade/cgroup"
)

// Cleanup removes what sandboxes left on the host because the process that
// owned them died before it could remove it, killed by SIGKILL, say: the
// control groups under the default parent and under each of cgroupParents
// (values of Limits.CgroupParent), after killing any process still in them,
// and the host sides of links whose sandbox's namespace outlived its owner
// (see netns.Cleanup). It leaves alone the sandboxes of owners that still
// run, so it is safe to call at any time and from several processes at
// once; a service calls it when it starts. Besides, the first sandbox with
// a control group that a process starts cleans up its parent this way.
//
// The processes of a sandbox never outlive its owner (they are killed with
// it, see the package documentation), and their links go with their
// network namespace; the groups are what can be left.
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
