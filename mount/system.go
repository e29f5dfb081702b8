package mount

import (
	"os"
	"sync"
)

// systemPaths are the host paths that make up a read-only system view: the
// programs and libraries under /usr and the top-level directories that
// merged-/usr hosts turn into symbolic links, plus the two files of /etc
// that programs in them need to run (the dynamic linker's cache and the
// alternatives links of Debian-like hosts).
var systemPaths = []string{
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/etc/ld.so.cache", "/etc/alternatives",
}

var hostSystem = sync.OnceValue(func() []Mount {
	var ms []Mount
	for _, p := range systemPaths {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				continue
			}
			ms = append(ms, Mount{Kind: Symlink, Source: link, Target: p})
		case fi.IsDir() || fi.Mode().IsRegular():
			ms = append(ms, Mount{Kind: Bind, Source: p, Target: p})
		}
	}
	return ms
})

// HostSystem returns the entries that show the host's /usr, /bin, /sbin and
// /lib* read-only, keeping merged-/usr symbolic links as they are on the
// host, plus /etc/ld.so.cache and /etc/alternatives when present. The host
// is inspected once per process; the caller may modify the returned slice.
func HostSystem() []Mount {
	return append([]Mount(nil), hostSystem()...)
}
