// Package netns gives sandboxes their networks: a namespace of their own
// with only lo up (the default), the host's network (opt-in, not isolated),
// a veth link to the host with addresses, private networks that several
// sandboxes join, and host ports forwarded into a sandbox.
//
// # What to use
//
// A Manager does it all: Manager.Setup turns a Config into a Net, whose NS
// the sandbox's init joins and which is released when the sandbox ends.
// Manager.NewNetwork makes the private networks that Configs name. New and
// Pool are the pieces underneath, for callers who need only a namespace:
//
//	m, err := netns.NewManager(netns.ManagerConfig{PoolSize: 4})
//	...
//	defer m.Close()
//	n, err := m.Setup(netns.Config{Link: &netns.Link{}})
//	...
//	defer n.Release()
//	cmd := exec.Command("server")
//	err = n.NS().Start(cmd) // or setns(n.NS().Fd()) on a locked thread, then fork
//
// Setup is Manager.Prepare (check, bind the host ports, take a namespace,
// reserve addresses) and then Net.Connect (create the links and wait until
// they carry traffic). A caller that starts a process in the namespace can
// do so between the two, so that the process's start-up and the kernel's
// work on the links overlap; the sandbox package does.
//
// Check a Config early with Config.Validate, or against a manager with
// Manager.Check; Prepare checks it again (network names, addresses in
// subnets) and binds the host ports before it creates anything, and
// reports a *ConfigError naming the field that is wrong.
//
// # How it is built
//
// Namespaces are held as file descriptors (NS) and are never entered by the
// caller's threads. New unshares on a locked thread, opens the namespace and
// moves back; NS.Do runs a function on a locked thread inside a namespace
// and moves back. A thread that fails to move back is discarded, never
// reused. All link, address and route work goes through netlink handles
// bound to the namespace concerned; this package does not use
// netlink.NewHandleAt, which moves the calling thread and ignores a failure
// to move it back.
//
// A Link is a veth pair created with its sandbox end already inside the
// sandbox's namespace, so the pair never sits whole on the host: when the
// sandbox's namespace is destroyed, the kernel deletes the pair and, with
// the host side, its addresses and routes. That holds when the owner dies
// by SIGKILL. Host sides are named LinkPrefix followed by the owner's
// process id, and record the owner's id and start time in their alias;
// Cleanup (which NewManager runs) deletes those of owners that are gone.
//
// A private Network is a bridge in a namespace of its own, so nothing of it
// is on the host, and it goes with its owner. Members reach each other by
// the names in their hosts files (Net.HostsFile) and reach neither the host
// nor other networks unless a sandbox is given a Link or joins those too.
// A member's hardware address is derived from its IPv4 address, so that a
// member that leaves and comes back under its name is reached at once.
//
// Exposed ports are forwarded in user space by the owner's process: a host
// listener whose connections are dialled into the sandbox's namespace from a
// socket created inside it.
//
// # Lifetime traps
//
// A namespace lives as long as a descriptor, a process or a socket refers
// to it. Net.Release closes the sandbox's namespace and lets the kernel
// delete its links with it, in the background and in batches, because
// deleting each link explicitly costs tens of milliseconds of RCU grace
// periods; a link whose namespace is still held by a process is deleted
// explicitly a second later. Addresses are handed out again only once their
// link is gone, and Manager.Close waits for all of it.
//
// The namespaces made here belong to the caller's user namespace. A sandbox
// in a user namespace of its own has no capability over its network: it
// cannot change addresses, routes or links, and cannot mount a fresh sysfs
// (which needs a network namespace it owns), so a sandbox that wants /sys
// bind-mounts it.
//
// A process started from a thread inside a namespace with
// SysProcAttr.Pdeathsig gets the signal when that thread ends; NS.Do only
// ends its thread when moving back failed.
//
// # Requirements
//
// Everything here but the pure functions (Config.Validate, HostsFile,
// ResolvConf) needs CAP_SYS_ADMIN and CAP_NET_ADMIN in the host's user
// namespace: in practice, root. Rootless sandboxes make their network
// namespace in their own user namespace instead and bring lo up themselves.
// On systems other than Linux the pure functions work as on Linux and
// everything else returns an error matching sandbox.ErrNotSupported.
package netns
