package sandbox

import (
	"sort"
	"strings"
)

// The kernel settings a sandbox may write (Config.Sysctl): those its own
// namespaces own. net.* belongs to its network namespace; these to its
// IPC namespace.
var (
	ipcSysctls = []string{
		"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
	}
	ipcSysctlPrefixes = []string{"fs.mqueue."}
)

// sysctlName returns the dotted name of a setting given by its name or
// its path below /proc/sys ("net/ipv4/ip_forward").
func sysctlName(key string) string {
	if strings.Contains(key, "/") {
		return strings.ReplaceAll(strings.Trim(key, "/"), "/", ".")
	}
	return key
}

// validateSysctl checks Config.Sysctl: names of settings the sandbox's
// own namespaces own, and values that hold no newline nor NUL.
func (c *Config) validateSysctl() error {
	keys := make([]string, 0, len(c.Sysctl))
	for k := range c.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := "Sysctl[" + k + "]"
		name := sysctlName(k)
		parts := strings.Split(name, ".")
		for _, p := range parts {
			if p == "" || p == ".." || strings.ContainsAny(p, "\x00") {
				return configErr(field, "is not a sysctl name")
			}
		}
		switch {
		case strings.HasPrefix(name, "net."):
			if c.Network.ShareHost {
				return configErr(field, "net.* settings are the network namespace's, and with Network.ShareHost that is the host's")
			}
			if c.Network.Join != "" {
				return configErr(field, "net.* settings are the network namespace's, and Network.Join's is not the sandbox's own")
			}
		case ownedByIPC(name):
		default:
			return configErr(field, "only the settings of the sandbox's own network (net.*) and IPC namespaces (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) may be written, not %s", name)
		}
		if strings.ContainsAny(c.Sysctl[k], "\x00\n") {
			return configErr(field, "the value must hold no newline nor NUL")
		}
	}
	return nil
}

func ownedByIPC(name string) bool {
	for _, n := range ipcSysctls {
		if name == n {
			return true
		}
	}
	for _, p := range ipcSysctlPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// sysctlPaths returns the paths below /proc/sys and the values of
// Config.Sysctl, in the order of their names.
func (c *Config) sysctlPaths() (paths, values []string) {
	keys := make([]string, 0, len(c.Sysctl))
	for k := range c.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		paths = append(paths, "/proc/sys/"+strings.ReplaceAll(sysctlName(k), ".", "/"))
		values = append(values, c.Sysctl[k])
	}
	return paths, values
}
