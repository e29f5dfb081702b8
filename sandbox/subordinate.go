//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Subordinate ids for an ordinary user.
//
// An unprivileged process may write the uid_map of a user namespace it
// created only to map its own id, in one entry. Wider maps come from the
// setuid helpers newuidmap and newgidmap, which check them against
// /etc/subuid and /etc/subgid and must run on the child's pid after the
// clone. The init is therefore started in a user namespace without maps,
// with every capability kept as an ambient one (the kernel computes
// capabilities at execve, when no id is mapped yet, and keeps ambient ones
// across it), and it waits for its spec, which the parent sends only once
// the helpers have written the maps. No second start of the init is
// needed.

// subIDs are the caller's first subordinate uid and gid ranges.
type subIDs struct {
	name                 string // the caller's user name, or its uid
	uid, gid             uint32 // first host id of each range
	size                 uint32 // ids in both ranges
	newuidmap, newgidmap string
}

// callerSubIDs finds the caller's ranges and the helpers, once per process.
var callerSubIDs = sync.OnceValues(func() (subIDs, error) {
	return lookupSubIDs(os.Geteuid(), "/etc/subuid", "/etc/subgid", exec.LookPath)
})

// lookupSubIDs finds the ranges of uid in the two files and the helpers
// with look.
func lookupSubIDs(uid int, uidFile, gidFile string, look func(string) (string, error)) (subIDs, error) {
	s := subIDs{name: strconv.Itoa(uid)}
	names := []string{s.name}
	if u, err := user.LookupId(s.name); err == nil {
		s.name = u.Username
		names = append(names, u.Username)
	}
	var usize, gsize uint32
	s.uid, usize = subordinate(uidFile, names)
	s.gid, gsize = subordinate(gidFile, names)
	if s.uid == 0 || s.gid == 0 {
		return s, &FeatureError{Feature: "subordinate ids", Err: fmt.Errorf(
			"user %s has no range in %s and %s; ask root to add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s",
			s.name, uidFile, gidFile, s.name)}
	}
	s.size = min(usize, gsize)
	for _, h := range []struct {
		name string
		path *string
	}{{"newuidmap", &s.newuidmap}, {"newgidmap", &s.newgidmap}} {
		p, err := look(h.name)
		if err != nil {
			// A PATH without /usr/bin still finds the usual place.
			p, err = "/usr/bin/"+h.name, nil
			if _, statErr := os.Stat(p); statErr != nil {
				return s, &FeatureError{Feature: "subordinate ids", Err: fmt.Errorf(
					"%s is not installed: install the uidmap package (apt-get install uidmap, dnf install shadow-utils)", h.name)}
			}
		}
		*h.path = p
	}
	return s, nil
}

// subordinateIdentity maps id 0 inside onto the caller and ids 1 and up
// onto the caller's subordinate ranges. The init runs as id 0 inside (the
// caller) with its capabilities kept as ambient ones, since it is started
// before the maps exist.
func (c *Config) subordinateIdentity() (identity, error) {
	s, err := callerSubIDs()
	if err != nil {
		return identity{}, err
	}
	if uint64(c.UID) > uint64(s.size) {
		return identity{}, configErr("UID", "must be at most %d with SubordinateIDs, the size of the caller's subordinate range", s.size)
	}
	if uint64(c.GID) > uint64(s.size) {
		return identity{}, configErr("GID", "must be at most %d with SubordinateIDs, the size of the caller's subordinate range", s.size)
	}
	return identity{
		uidMap: []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: os.Geteuid(), Size: 1},
			{ContainerID: 1, HostID: int(s.uid), Size: int(s.size)},
		},
		gidMap: []syscall.SysProcIDMap{
			{ContainerID: 0, HostID: os.Getegid(), Size: 1},
			{ContainerID: 1, HostID: int(s.gid), Size: int(s.size)},
		},
		// newgidmap allows setgroups(2) when the map uses subordinate
		// gids, so the command loses the caller's supplementary groups.
		setGroups:  true,
		ambient:    true,
		viaHelpers: true,
	}, nil
}

// writeMaps runs newuidmap and newgidmap, side by side, on the init pid.
func writeMaps(ctx context.Context, pid int, id identity) error {
	s, err := callerSubIDs()
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	run := func(helper, file string, m []syscall.SysProcIDMap) {
		args := []string{strconv.Itoa(pid)}
		for _, e := range m {
			args = append(args, strconv.Itoa(e.ContainerID), strconv.Itoa(e.HostID), strconv.Itoa(e.Size))
		}
		cmd := exec.CommandContext(ctx, helper, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(out.String())
			if msg == "" {
				msg = err.Error()
			}
			errs <- setupErr(helperStage(helper), fmt.Sprintf("/proc/%d/%s", pid, file), errors.New(msg))
			return
		}
		errs <- nil
	}
	go run(s.newuidmap, "uid_map", id.uidMap)
	go run(s.newgidmap, "gid_map", id.gidMap)
	return errors.Join(<-errs, <-errs)
}

// helperStage names the setup stage of a helper by its base name.
func helperStage(helper string) string {
	return helper[strings.LastIndexByte(helper, '/')+1:]
}

// sendAfterMaps writes the maps of the init pid and then sends it its
// spec, which it waits for before it does anything that needs an id.
func sendAfterMaps(ctx context.Context, conn *os.File, pid int, id identity, spec []byte) error {
	if err := writeMaps(ctx, pid, id); err != nil {
		return err
	}
	if err := writeFiles(conn, spec, nil); err != nil {
		return setupErr("send-spec", "", err)
	}
	return nil
}
