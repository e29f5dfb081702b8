//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Host root gives every sandbox a range of host ids of its own, a slot of
// root's subordinate range (see rootIDMap): two sandboxes that run at the
// same time never share a host id, so they share no per-user count of the
// kernel (RLIMIT_NPROC, RLIMIT_SIGPENDING, inotify instances …) and no
// file one of them makes is another's.
//
// A slot is claimed by a write lock on its byte range of one lock file,
// idLeasePath, in which byte N stands for host uid N: an open file
// description lock (F_OFD_SETLK), which the kernel releases when the last
// descriptor of that description closes, so also when the owner dies,
// however it dies. Nothing is left to clean up: a lock file whose ranges
// nobody holds is all free. Every process that allocates this way must
// agree on root's range (the same /etc/subuid); a slot's ids are the same
// in every process.
//
// When an owner dies, the kernel closes its files, and so drops its
// locks, just before it sends the parent-death signal that ends its
// sandboxes: for a moment a slot is free while its sandbox is being
// killed. The search goes round the slots (and starts at a place of its
// own in each process), so a slot just freed is taken again only when
// nearly all are held; and even then the two sandboxes' processes live
// in pid namespaces that cannot see each other.
//
// A slot's last id is mapped to nothing inside the sandbox: it owns the
// sandbox's user namespace (see asNamespaceOwner), so that the kernel
// charges what the sandbox holds to it, and no process or file ever has
// it.

// idLeasePath is the lock file of the slots. A variable for the tests.
var idLeasePath = "/run/stockade/idranges.lock"

// idLease is one sandbox's claim on a slot: f holds the lock until it is
// closed.
type idLease struct {
	f *os.File
	m IDMap // the ids the sandbox maps
	// owner is the host uid that owns the sandbox's user namespace.
	owner uint32
}

// slotSize is the number of host ids in a slot of pool: DefaultIDMapSize,
// or the whole pool when it is smaller.
func slotSize(pool IDMap) uint32 { return min(DefaultIDMapSize, pool.Size) }

// nextSlot is where the next search starts: past the slot this process
// took last, so that the search seldom meets a held one.
var nextSlot atomic.Uint32

// leaseIDs claims a free slot of pool, and returns a *SetupError when
// every slot is held by a running sandbox.
func leaseIDs(pool IDMap) (*idLease, error) {
	size := slotSize(pool)
	if size < 2 {
		return nil, setupErr("id-range", "", fmt.Errorf("root's range of host ids, %d from %d, is too small to give a sandbox ids of its own", pool.Size, pool.HostUID))
	}
	n := pool.Size / size
	if err := os.MkdirAll(filepath.Dir(idLeasePath), 0o755); err != nil {
		return nil, setupErr("id-range", filepath.Dir(idLeasePath), err)
	}
	f, err := os.OpenFile(idLeasePath, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, setupErr("id-range", idLeasePath, err)
	}
	first := nextSlot.Load()
	if first == 0 {
		// Processes started together begin their searches apart.
		first = uint32(os.Getpid())
	}
	for k := range n {
		i := (first + k) % n
		start := uint64(pool.HostUID) + uint64(i)*uint64(size)
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(start), Len: int64(size)}
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		if err == nil {
			nextSlot.Store(i + 1)
			g := uint32(uint64(pool.HostGID) + uint64(i)*uint64(size))
			return &idLease{
				f:     f,
				m:     IDMap{HostUID: uint32(start), HostGID: g, Size: size - 1},
				owner: uint32(start) + size - 1,
			}, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
			f.Close()
			return nil, setupErr("id-range", idLeasePath, err)
		}
	}
	f.Close()
	return nil, setupErr("id-range", idLeasePath, fmt.Errorf(
		"all %d ranges of %d host ids from %d are held by running sandboxes; give root a larger range in /etc/subuid and /etc/subgid, or set Config.IDMap",
		n, size, pool.HostUID))
}

// release gives the slot back. The sandbox's processes must be gone.
func (l *idLease) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
