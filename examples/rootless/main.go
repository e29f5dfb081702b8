//go:build unix

// Command rootless runs sandboxes as an ordinary user, without root, and
// shows how the ids inside map onto ids of the host.
//
// A sandbox needs a user namespace, and since Linux 3.8 an ordinary user
// may create one: inside it, the process that made it holds every
// capability, but only over what the namespace owns (its own mounts, its
// own network, its own processes), never over the host. So the same
// sandbox works with and without root: new pid, mount, network, uts, ipc
// and cgroup namespaces, a root file system of read-only host
// directories, pivot_root, seccomp and no_new_privs. Two things need
// care. The kernel forbids mknod in a user namespace, so /dev holds bind
// mounts of the host's device nodes instead. And cgroups, which set
// resource limits, belong to root unless root delegated a subtree to the
// user; without one, limits fail with an error that says so (see
// cgroup.CheckDelegation), or with Limits.BestEffort fall back to rlimits.
//
// The question a rootless sandbox must answer is whom the ids inside
// stand for. An ordinary user may map just one id, its own: the command
// runs as uid 1000 inside, which the host sees as the caller. Writes
// through a writable bind belong to the caller, and the command may read
// what the caller may read, if it is bound in.
//
// With Config.SubordinateIDs the sandbox maps more: root gives each user
// a range of subordinate ids in /etc/subuid and /etc/subgid (usermod
// --add-subuids 100000-165535 --add-subgids 100000-165535 USER), and the
// setuid helpers newuidmap and newgidmap (package uidmap) write maps
// that use it. Then id 0 inside is the caller, and uid 1000 inside is a
// host id of its own, 100999 for a range that starts at 100000: the
// command owns none of the caller's files and keeps none of its groups.
//
// sandbox.Probe says what the host offers before anything runs, and why
// a feature is off: a blocked user namespace, say, comes with the sysctl
// that blocks it and the command that would unblock it.
//
// Run it as an ordinary user:
//
//	go run ./examples/rootless
//
// Run as root, it shows root's own mapping: an unprivileged range.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stockade/stockade/sandbox"
)

const script = `
echo "inside I am $(id)"
echo "my uid map: $(cat /proc/self/uid_map | tr -s ' ' | tr '\n' ';')"
echo hello > /out/note
`

func main() {
	probe := sandbox.Probe()
	fmt.Printf("uid %d; user namespaces: %s\n", probe.UID, answer(probe.UserNamespaces))
	if !probe.Sandbox.Available {
		log.Fatalf("no sandbox can start here: %s", probe.Sandbox.Detail)
	}
	fmt.Println("subordinate ids:", answer(probe.SubordinateIDs))

	if probe.Root {
		run("host root's default: an unprivileged range", false)
		return
	}
	run("own ids", false)
	if probe.SubordinateIDs.Available {
		run("subordinate ids", true)
	}
}

// run starts a sandbox that writes a file through a writable bind, and
// shows whom the host says the file belongs to.
func run(title string, subordinate bool) {
	out, err := os.MkdirTemp("", "stockade-rootless-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	// The command may run as an id that is not the caller's.
	if err := os.Chmod(out, 0o777); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Printf("\n%s:\n", title)
	_, err = sandbox.New(sandbox.Config{
		Args:           []string{"/bin/sh", "-c", script},
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		Mounts:         []sandbox.Mount{{Kind: "bind", Source: out, Target: "/out", Writable: true}},
		SubordinateIDs: subordinate,
	}).Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(out, "note"))
	if err != nil {
		log.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	who := "the caller"
	if int(st.Uid) != os.Geteuid() {
		who = "not the caller"
	}
	fmt.Printf("the file it wrote belongs to host uid %d, gid %d (%s)\n", st.Uid, st.Gid, who)
}

func answer(s sandbox.Support) string {
	if s.Available {
		return "yes, " + s.Detail
	}
	return "no, " + strings.TrimPrefix(s.Detail, "stockade: ")
}
