//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
//
// With the default parent, Cleanup also searches each hierarchy for other
// directories named DefaultParent: an owner that ran in another cgroup than
// the caller (another systemd unit or container, or a worker that has
// moved since) left its groups below its own cgroup. The search is bounded,
// so that a host with a huge cgroup tree costs a bounded time: it goes
// breadth first, one level of every hierarchy before the next, finds
// parents at most 6 levels below a hierarchy's top (as far as the caller
// sees it), reads at most 10,000 directories in all, and descends neither
// into groups nor into the parents it finds. Parents beyond that are not
// cleaned, nor are those the caller may not write to (another user's
// delegated cgroups); the caller's own default parent always is. On cgroup
// v1 a group is removed from every hierarchy it was found in, under
// whichever parent. An explicit parent is cleaned alone, with no search.
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
	hiers := h.v1Distinct()
	if h.v2 != nil {
		hiers = []*hierarchy{h.v2}
	}
	// parents[i] are the directories to clean in hiers[i]; the first is
	// the one parent names.
	parents := make([][]string, len(hiers))
	for i, hier := range hiers {
		parents[i] = []string{hier.dir(resolveParent(parent, hier))}
	}
	if parent == "" {
		tops := make([]string, len(hiers))
		for i, hier := range hiers {
			tops[i] = hier.mount
		}
		found, _, err := findParents(ctx, tops, DefaultParent, searchBound)
		if err != nil {
			return nil, fmt.Errorf("clean up cgroups: search for %s parents: %w", DefaultParent, err)
		}
		for i, dirs := range found {
			for _, d := range dirs {
				if !slices.Contains(parents[i], d) && canWrite(d) {
					parents[i] = append(parents[i], d)
				}
			}
		}
	}
	// stale maps the name of each group of a dead owner to its
	// directories, in every hierarchy and under every parent.
	stale := map[string][]v1Dir{}
	for i, hier := range hiers {
		for j, d := range parents[i] {
			entries, err := os.ReadDir(d)
			if err != nil && (j > 0 || errors.Is(err, os.ErrNotExist)) {
				continue // a parent found by the search went away
			}
			if err != nil {
				return nil, fmt.Errorf("clean up cgroups under %s: %w", d, err)
			}
			for _, e := range entries {
				if o, ok := parseName(e.Name()); ok && e.IsDir() && !o.alive(me) {
					stale[e.Name()] = append(stale[e.Name()], v1Dir{hier, d + "/" + e.Name()})
				}
			}
		}
	}
	var removed []string
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(stale)) {
		var impls []groupImpl
		if h.v2 != nil {
			for _, f := range stale[name] {
				impls = append(impls, openV2At(f.dir))
			}
		} else {
			impls = append(impls, openV1At(stale[name]))
		}
		var gerrs []error
		for _, impl := range impls {
			g := &Group{name: name, impl: impl}
			err := g.Kill(ctx)
			if err == nil {
				err = g.Remove()
			}
			if err != nil {
				gerrs = append(gerrs, err)
			}
		}
		if len(gerrs) > 0 {
			errs = append(errs, fmt.Errorf("clean up: %w", errors.Join(gerrs...)))
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// walkBound bounds a search of the cgroup tree.
type walkBound struct {
	// depth is how many levels below a top the directories found may be.
	depth int
	// dirs is how many directories the search may read in all.
	dirs int
}

// searchBound bounds Cleanup's search for parents. Tests change it.
var searchBound = walkBound{depth: 6, dirs: 10000}

// findParents returns, for each of tops, the directories named base at
// most b.depth levels below it (a child of a top is one level below). It
// walks breadth first, reading one level of every top before the next
// level, reads at most b.dirs directories, and descends neither into the
// directories named base nor into groups. Directories it cannot read
// (removed meanwhile, or not the caller's to read) are skipped. It also
// returns how many directories it read. When ctx is done it returns what it
// found so far with ctx's error.
func findParents(ctx context.Context, tops []string, base string, b walkBound) (found [][]string, read int, err error) {
	type node struct {
		top int
		dir string
	}
	found = make([][]string, len(tops))
	level := make([]node, len(tops))
	for i, t := range tops {
		level[i] = node{i, t}
	}
	for depth := 0; depth < b.depth && len(level) > 0; depth++ {
		var next []node
		for _, n := range level {
			if read >= b.dirs {
				return found, read, nil
			}
			if err := ctx.Err(); err != nil {
				return found, read, err
			}
			read++
			entries, err := os.ReadDir(n.dir)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !e.IsDir() {
					continue
				}
				name := e.Name()
				if name == base {
					found[n.top] = append(found[n.top], n.dir+"/"+name)
				} else if _, group := parseName(name); !group && len(next) < b.dirs {
					next = append(next, node{n.top, n.dir + "/" + name})
				}
			}
		}
		level = next
	}
	return found, read, nil
}

// RemoveNamed kills what runs in the group that Config{Parent: parent,
// Name: name} made and removes it, in every hierarchy where it is found:
// the Cleanup of a group with a given Name, which Cleanup does not
// recognise. A group that is not there is no error.
func RemoveNamed(ctx context.Context, parent, name string) error {
	if err := validateSyntax(Config{Parent: parent, Name: name}); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("remove cgroup: no name")
	}
	h, err := probeHost()
	if err != nil {
		return err
	}
	hiers := h.v1Distinct()
	if h.v2 != nil {
		hiers = []*hierarchy{h.v2}
	}
	var found []v1Dir
	for _, hier := range hiers {
		d := hier.dir(resolveParent(parent, hier)) + "/" + name
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			found = append(found, v1Dir{hier, d})
		}
	}
	if len(found) == 0 {
		return nil
	}
	var impl groupImpl
	if h.v2 != nil {
		impl = openV2At(found[0].dir)
	} else {
		impl = openV1At(found)
	}
	g := &Group{name: name, impl: impl}
	if err := g.Kill(ctx); err != nil {
		return err
	}
	return g.Remove()
}
