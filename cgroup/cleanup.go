package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
)

// Cleanup kills the processes of, and removes, every group under parent
// (a Config.Parent: "" is the default) whose owner process has died, as
// when the owner was killed with SIGKILL before it could remove its groups.
// It returns the names of the groups it removed. Groups owned by live
// processes, and groups whose owner it cannot judge (an owner in another
// pid namespace), are left alone; so are directories it did not name.
// Several processes may clean the same parent at once.
func Cleanup(ctx context.Context, parent string) ([]string, error) {
	if err := validateSyntax(Config{Parent: parent}); err != nil {
		return nil, err
	}
	h, err := probeHost()
	if err != nil {
		return nil, err
	}
	me, err := self()
	if err != nil {
		return nil, err
	}
	var names []string
	var dirs []string
	if h.v2 != nil {
		dirs = append(dirs, h.v2.dir(resolveParent(parent, h.v2)))
	}
	for _, hier := range h.v1 {
		dirs = append(dirs, hier.dir(resolveParent(parent, hier)))
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("clean up cgroups under %s: %w", d, err)
		}
		for _, e := range entries {
			if o, ok := parseName(e.Name()); ok && e.IsDir() && !o.alive(me) && !slices.Contains(names, e.Name()) {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	var removed []string
	var errs []error
	for _, name := range names {
		g := &Group{name: name}
		if h.v2 != nil {
			g.impl = openV2(h.v2, parent, name)
		} else {
			g.impl = openV1(h, parent, name)
		}
		err := g.Kill(ctx)
		if err == nil {
			err = g.Remove()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("clean up: %w", err))
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}
