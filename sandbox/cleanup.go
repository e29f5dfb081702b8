//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/stockade/stockade/cgroup"
)

// Cleanup removes what dead owners' sandboxes left; call it on service start.
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
