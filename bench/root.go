package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootDirs are the directories every runner's root needs: the mount points
// of /proc, /dev, /sys and the tmpfs the sandboxes place, and /etc.
var rootDirs = []string{"bin", "dev", "etc", "proc", "sys", "tmp", "work"}

// rootApplets are the busybox applets the benchmark runs.
var rootApplets = []string{"true", "sleep", "sh"}

// makeRoot builds the root file system every runner uses, in dir: a static
// busybox copied from busybox and links to the applets the benchmark runs.
// Every directory is 0755, so that the ids a user namespace maps can walk
// it.
func makeRoot(dir, busybox string) error {
	if err := checkStatic(busybox); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("make root: %w", err)
	}
	for _, d := range rootDirs {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("make root: %w", err)
		}
	}
	if err := copyFile(busybox, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return fmt.Errorf("make root: %w", err)
	}
	for _, a := range rootApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return fmt.Errorf("make root: %w", err)
		}
	}
	return nil
}

// checkStatic returns an error unless path is a statically linked ELF
// executable: the root holds nothing else for it to load.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("busybox %s: %w (install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("busybox %s is dynamically linked; the benchmark's root needs a static one (install busybox-static)", path)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// OCI bundles for crun and runc: the isolation of the peers notes
// (pid, mount, ipc, uts and network namespaces, a 256 MiB memory and 64
// task limit) plus a user namespace that maps the container's ids onto an
// unprivileged host range, as stockade's does; no capabilities,
// no_new_privs, a read-only root, /proc and a tmpfs /dev.
const (
	bundleHostID   = 1 << 30
	bundleIDs      = 65536
	bundleMemory   = 256 << 20
	bundlePids     = 64
	bundleHostname = "bench"
	ociVersion     = "1.0.2"
)

// ociSpec returns the runtime spec of a container that runs args in root.
func ociSpec(root string, args []string) *specs.Spec {
	memory, pids := int64(bundleMemory), int64(bundlePids)
	idmap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: bundleHostID, Size: bundleIDs}}
	return &specs.Spec{
		// The oldest version both runtimes take: crun 1.8 refuses newer
		// ones than it knows.
		Version: ociVersion,
		Process: &specs.Process{
			Args:            args,
			Env:             []string{"PATH=/bin"},
			Cwd:             "/",
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Root:     &specs.Root{Path: root, Readonly: true},
		Hostname: bundleHostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			UIDMappings: idmap,
			GIDMappings: idmap,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.UserNamespace},
			},
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: &memory},
				Pids:   &specs.LinuxPids{Limit: &pids},
			},
		},
	}
}

// writeBundle writes an OCI bundle (a directory holding config.json) that
// runs args in root.
func writeBundle(dir, root string, args []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	b, err := json.MarshalIndent(ociSpec(root, args), "", "\t")
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}
