//go:build linux

package main

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/stockade/stockade/sandbox"
)

// makeMountPoints creates in a bundle's root file system the mount points
// it lacks, as runc does: the sandbox mounts its root read-only from a
// user namespace in which the files' owner may not exist, so it can create
// none itself (a root file system without /tmp fails with EACCES). Made
// are /proc, /dev, /tmp, /sys with Security.Sysfs, and the target of each
// mount that lies directly on the root file system (not inside one of
// those nor inside another mount): a directory, or an empty file for a
// bind of a file. Everything is resolved inside the root (os.Root), so a
// link in the bundle cannot point a mkdir outside it. Existing entries are
// left as they are.
func makeMountPoints(cfg *sandbox.Config) error {
	if cfg.RootDir == "" {
		return nil
	}
	root, err := os.OpenRoot(cfg.RootDir)
	if err != nil {
		return err
	}
	defer root.Close()
	covered := []string{"/proc", "/dev", "/tmp"}
	if cfg.Security.Sysfs {
		covered = append(covered, "/sys")
	}
	for _, d := range covered {
		if err := mkdirIn(root, d); err != nil {
			return err
		}
	}
	for _, m := range cfg.Mounts {
		if m.Target == "/" || below(covered, m.Target) {
			continue
		}
		covered = append(covered, m.Target)
		if m.Kind == sandbox.Bind {
			fi, err := os.Stat(m.Source)
			if err != nil {
				continue // Start names the missing source
			}
			if !fi.IsDir() {
				if err := mkfileIn(root, m.Target); err != nil {
					return err
				}
				continue
			}
		}
		if err := mkdirIn(root, m.Target); err != nil {
			return err
		}
	}
	return nil
}

// below reports whether target is one of dirs or lies inside one.
func below(dirs []string, target string) bool {
	for _, d := range dirs {
		if target == d || strings.HasPrefix(target, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

func rel(name string) string { return strings.TrimPrefix(path.Clean(name), "/") }

func mkdirIn(root *os.Root, name string) error {
	if _, err := root.Lstat(rel(name)); err == nil {
		return nil
	}
	return root.MkdirAll(rel(name), 0o755)
}

func mkfileIn(root *os.Root, name string) error {
	if _, err := root.Lstat(rel(name)); err == nil {
		return nil
	}
	if err := root.MkdirAll(path.Dir(rel(name)), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(rel(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
