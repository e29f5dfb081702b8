//go:build linux

package netns

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitReady waits until the pool holds n namespaces.
func waitReady(t testing.TB, p *Pool, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); p.Ready() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pool holds %d namespaces after 5 s, want %d", p.Ready(), n)
		}
	}
}

func TestPool(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	p := NewPool(3)
	waitReady(t, p, 3)
	// Taking more than the pool holds still works: the rest are made on
	// the spot.
	var got []*NS
	for range 5 {
		ns, err := p.Get()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ns)
	}
	waitReady(t, p, 3)
	for _, ns := range got {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Ready() != 0 {
		t.Errorf("%d namespaces left in a closed pool", p.Ready())
	}
	if _, err := p.Get(); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPoolBacksOffAndRecovers(t *testing.T) {
	var calls, failing atomic.Int32
	failing.Store(1)
	fake := func() (*NS, error) {
		calls.Add(1)
		if failing.Load() == 1 {
			return nil, errors.New("no namespaces today")
		}
		return &NS{fd: -1}, nil
	}
	start := time.Now()
	p := newPool(2, fake)
	defer p.Close()
	// The waits between tries double from 10 ms: the fifth try comes after
	// 10+20+40+80 ms at the earliest, however busy the machine, where
	// tries without a wait would have made hundreds.
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 5; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d tries in 10 s of failures", calls.Load())
		}
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("5 tries in %v of failures: no backoff", d)
	}
	if _, err := p.Get(); err == nil {
		t.Error("Get on an empty pool that cannot make namespaces succeeded")
	}
	failing.Store(0)
	waitReady(t, p, 2)
}

// Setup takes its namespace from the pool: one made before Setup was
// called.
func TestManagerUsesPool(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	var mu sync.Mutex
	made := map[uint64]bool{}
	m.pool = newPool(2, func() (*NS, error) {
		ns, err := New()
		if err == nil {
			mu.Lock()
			made[nsInode(t, ns)] = true
			mu.Unlock()
		}
		return ns, err
	})
	waitReady(t, m.pool, 2)
	mu.Lock()
	before := maps.Clone(made)
	mu.Unlock()
	n, err := m.Setup(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !before[nsInode(t, n.NS())] {
		t.Error("Setup did not take its namespace from the warm pool")
	}
	if err := n.Release(); err != nil {
		t.Fatal(err)
	}
}

func nsInode(t testing.TB, ns *NS) uint64 {
	var st unix.Stat_t
	if err := unix.Fstat(ns.Fd(), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
