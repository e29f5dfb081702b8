//go:build linux

package sandbox

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// identity is how the sandbox's user namespace maps ids, and as whom the
// init stage runs inside it.
type identity struct {
	uidMap, gidMap []syscall.SysProcIDMap
	// initUID and initGID are the init's ids inside the sandbox.
	initUID, initGID int
	// setGroups: whether setgroups(2) is allowed in the namespace; only a
	// privileged caller may allow it.
	setGroups bool
	// ambient: the init runs as a non-root id and needs its capabilities
	// kept as ambient ones.
	ambient bool
	// viaHelpers: the maps hold subordinate ids, which only the setuid
	// helpers newuidmap and newgidmap may write, after the clone (see
	// subordinate.go).
	viaHelpers bool
	// pool, for host root without Config.IDMap, is the range a slot of
	// which the sandbox leases at its start (see lease); the maps are
	// then the slot's.
	pool IDMap
	// owner, when not zero, is the host uid that creates the sandbox's
	// user namespace, and so owns it and is charged for what the sandbox
	// holds (see asNamespaceOwner); zero: the caller.
	owner int
	// leased holds the slot of pool until the sandbox has ended.
	leased *idLease
}

// identity works out the id mapping for c, which has its defaults filled in.
func (c *Config) identity() (identity, error) {
	if os.Geteuid() != 0 {
		// An ordinary user may map only its own ids, one each; inside they
		// are the command's. The init runs as the same ids and keeps its
		// capabilities as ambient ones.
		if c.IDMap != (IDMap{}) {
			return identity{}, configErr("IDMap", "needs host root; an ordinary user can map only its own ids")
		}
		for i, m := range c.Mounts {
			if m.Owner != nil {
				return identity{}, configErr(fmtIndex("Mounts", i)+".Owner", "needs host root: an ordinary user's sandbox writes as the caller, or with SubordinateIDs as a subordinate id, and may not idmap the host's file systems")
			}
		}
		if c.SubordinateIDs {
			return c.subordinateIdentity()
		}
		return identity{
			uidMap:  []syscall.SysProcIDMap{{ContainerID: c.UID, HostID: os.Geteuid(), Size: 1}},
			gidMap:  []syscall.SysProcIDMap{{ContainerID: c.GID, HostID: os.Getegid(), Size: 1}},
			initUID: c.UID, initGID: c.GID,
			ambient: c.UID != 0,
		}, nil
	}
	if c.IDMap != (IDMap{}) {
		// The caller's range, as given: shared by every sandbox given it,
		// and charged, as their namespaces' owner, to its first id.
		return rootIdentity(c.IDMap, int(c.IDMap.HostUID)), nil
	}
	pool := rootIDMap()
	slot := IDMap{HostUID: pool.HostUID, HostGID: pool.HostGID, Size: slotSize(pool) - 1}
	if err := slot.validate(c.UID, c.GID); err != nil {
		return identity{}, err
	}
	id := rootIdentity(slot, 0)
	id.pool = pool
	return id, nil
}

func rootIdentity(m IDMap, owner int) identity {
	return identity{
		uidMap:    []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostUID), Size: int(m.Size)}},
		gidMap:    []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostGID), Size: int(m.gidSize())}},
		setGroups: true,
		owner:     owner,
	}
}

// lease claims a slot of id.pool for a sandbox of host root's without
// Config.IDMap, and maps the sandbox's ids onto it. It is the first thing
// a start does on the host.
func (id *identity) lease() error {
	if id.pool == (IDMap{}) {
		return nil
	}
	l, err := leaseIDs(id.pool)
	if err != nil {
		return err
	}
	*id = rootIdentity(l.m, int(l.owner))
	id.leased = l
	return nil
}

// rootIDMap is host root's range, which its sandboxes lease slots of: its
// /etc/subuid and /etc/subgid entries when both exist, else
// DefaultIDPoolSize ids from DefaultHostID.
var rootIDMap = sync.OnceValue(func() IDMap {
	names := []string{"root", "0"}
	uid, usize := subordinate("/etc/subuid", names)
	gid, gsize := subordinate("/etc/subgid", names)
	if uid == 0 || gid == 0 {
		return IDMap{HostUID: DefaultHostID, HostGID: DefaultHostID, Size: DefaultIDPoolSize}
	}
	return IDMap{HostUID: uid, HostGID: gid, Size: min(usize, gsize)}
})

// subordinate returns the first range of file that belongs to one of names,
// or zeros.
func subordinate(file string, names []string) (start, size uint32) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 {
			continue
		}
		found := false
		for _, n := range names {
			found = found || fields[0] == n
		}
		s, err1 := strconv.ParseUint(fields[1], 10, 32)
		n, err2 := strconv.ParseUint(fields[2], 10, 32)
		if found && err1 == nil && err2 == nil && s > 0 && n > 0 {
			return uint32(s), uint32(n)
		}
	}
	return 0, 0
}

// maps reports whether the ids uid and gid inside the sandbox are mapped.
func (id identity) maps(uid, gid int) bool {
	in := func(m []syscall.SysProcIDMap, x int) bool {
		for _, e := range m {
			if x >= e.ContainerID && x < e.ContainerID+e.Size {
				return true
			}
		}
		return false
	}
	return in(id.uidMap, uid) && in(id.gidMap, gid)
}

// hostIDs returns the host ids that the ids uid and gid inside the sandbox
// map onto, or -1 for an id that is not mapped.
func (id identity) hostIDs(uid, gid int) (int, int) {
	host := func(m []syscall.SysProcIDMap, x int) int {
		for _, e := range m {
			if x >= e.ContainerID && x < e.ContainerID+e.Size {
				return e.HostID + x - e.ContainerID
			}
		}
		return -1
	}
	return host(id.uidMap, uid), host(id.gidMap, gid)
}
