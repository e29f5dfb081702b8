//go:build linux

package testutil

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NetworkLeakChecks list the host network state that tests must leave as
// they found it: links (bridges marked), addresses, IPv4 and IPv6 routes,
// and network namespaces bound to a name under /run/netns. They read the
// network namespace of the test process. Namespaces that the tests hold
// open show up in the file descriptor check, and those kept alive by a
// process in the child process check.
//
// Links that the netns package made for another process (named "stk",
// the owner's pid in base 36, "-"), with their addresses and routes, are
// left out: go test runs the packages' test binaries side by side.
var NetworkLeakChecks = []LeakCheck{
	{"network link", hostLinks},
	{"network address", hostAddrs},
	{"route", hostRoutes},
	{"named network namespace", namedNetns},
}

// otherOwner reports whether the link called name was made by the netns
// package for a process other than this one.
func otherOwner(name string) bool {
	rest, ok := strings.CutPrefix(name, "stk")
	if !ok {
		return false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	pid, err := strconv.ParseInt(p, 36, 32)
	return err == nil && int(pid) != os.Getpid()
}
func hostLinks() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ifs))
	for _, i := range ifs {
		if otherOwner(i.Name) {
			continue
		}
		item := i.Name
		if _, err := os.Stat(filepath.Join("/sys/class/net", i.Name, "bridge")); err == nil {
			item += " (bridge)"
		}
		out = append(out, item)
	}
	slices.Sort(out)
	return out, nil
}

func hostAddrs() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range ifs {
		if otherOwner(i.Name) {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			continue // The link went away in between.
		}
		for _, a := range addrs {
			out = append(out, a.String()+" on "+i.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// hostRoutes lists the routes of /proc/net/route and /proc/net/ipv6_route,
// each as its interface and raw destination fields.
func hostRoutes() ([]string, error) {
	var out []string
	if b, err := os.ReadFile("/proc/self/net/route"); err == nil {
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 8 || otherOwner(f[0]) {
				continue
			}
			// Iface, Destination, Gateway, Mask (hex, as the kernel
			// prints them).
			out = append(out, "ipv4 "+f[0]+" dst "+f[1]+"/"+f[7]+" via "+f[2])
		}
	} else {
		return nil, err
	}
	if b, err := os.ReadFile("/proc/self/net/ipv6_route"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 10 || otherOwner(f[9]) {
				continue
			}
			// Destination, its length, next hop, device.
			out = append(out, "ipv6 "+f[9]+" dst "+f[0]+"/"+f[1]+" via "+f[4])
		}
	}
	slices.Sort(out)
	return out, nil
}

func namedNetns() ([]string, error) {
	var out []string
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // No such directory: no named namespaces.
		}
		for _, e := range entries {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// NetnsFDs lists the descriptors of this process that hold a network
// namespace, as a LeakCheck snapshot.
func NetnsFDs() ([]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "net:") {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out, nil
}

// CheckAfter takes a snapshot with each check now and fails the test if,
// when it ends, a check finds an item that was not there before. What a
// dead network namespace held goes in the background, so the checks are
// repeated for up to wait before they count as failed. Call it first in
// a test, so that it runs after the test's other cleanups.
func CheckAfter(tb testing.TB, wait time.Duration, checks ...LeakCheck) {
	tb.Helper()
	before := make([][]string, len(checks))
	for i, c := range checks {
		s, err := c.Snapshot()
		if err != nil {
			tb.Fatalf("leak check %s: %v", c.Name, err)
		}
		before[i] = s
	}
	tb.Cleanup(func() {
		var leaks []string
		for deadline := time.Now().Add(wait); ; {
			leaks = leaks[:0]
			for i, c := range checks {
				after, err := c.Snapshot()
				if err != nil {
					tb.Errorf("leak check %s: %v", c.Name, err)
					continue
				}
				for _, item := range after {
					if !slices.Contains(before[i], item) {
						leaks = append(leaks, c.Name+": "+item)
					}
				}
			}
			if len(leaks) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(leaks) > 0 {
			tb.Errorf("left behind:\n  %s", strings.Join(leaks, "\n  "))
		}
	})
}
