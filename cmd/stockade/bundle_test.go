//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/oci"
)

// runcSpec is the config.json that "runc spec" (runc 1.1.5) writes, as
// package oci's testdata holds it; inline, since the rootless run of these
// tests has no source tree.
const runcSpec = `{"ociVersion":"1.0.2-dev","process":{"terminal":true,"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TERM=xterm"],"cwd":"/","capabilities":{"bounding":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"permitted":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"ambient":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},"root":{"path":"rootfs","readonly":true},"hostname":"runc","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}],"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],"maskedPaths":["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],"readonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}`

// ociBundle makes a bundle of the config "runc spec" writes and a busybox
// root, with edit applied to the config, and
// returns its directory.
func ociBundle(t *testing.T, edit func(m map[string]any)) string {
	dir := t.TempDir()
	root := busyboxRoot(t)
	require.NoError(t, os.Mkdir(filepath.Join(root, "sys"), 0o755))
	require.NoError(t, os.Symlink(root, filepath.Join(dir, "rootfs")))
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(runcSpec), &m))
	edit(m)
	data, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, oci.ConfigFile), data, 0o644))
	return dir
}

// runnableSpec makes the two edits the config runc writes needs.
func runnableSpec(m map[string]any) {
	p := m["process"].(map[string]any)
	p["terminal"] = false
	p["cwd"] = "/work"
	p["args"] = []string{"sh", "-c", "echo from the spec; hostname; id -u"}
}

func TestRunBundle(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	t.Run("as runc writes it", func(t *testing.T) {
		dir := ociBundle(t, func(map[string]any) {})
		status, stdout, stderr := stockadeRun(t, "--bundle", dir)
		assert.Equal(t, exitUsage, status)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "process.terminal): standard input is not a terminal", "runc's spec asks for a terminal")
		assert.NotContains(t, stderr, "process.cwd", "a working directory of / is accepted")
	})
	t.Run("runnable", func(t *testing.T) {
		dir := ociBundle(t, runnableSpec)
		status, stdout, stderr := stockadeRun(t, "--bundle", dir)
		assert.Equal(t, 0, status, "stderr: %s", stderr)
		assert.Equal(t, "from the spec\nrunc\n0\n", stdout)
	})
	t.Run("--config and a command", func(t *testing.T) {
		dir := ociBundle(t, runnableSpec)
		status, stdout, stderr := stockadeRun(t, "--config", filepath.Join(dir, oci.ConfigFile), "--", "sh", "-c", "echo from the flags; exit 4")
		assert.Equal(t, 4, status, "stderr: %s", stderr)
		assert.Equal(t, "from the flags\n", stdout)
	})
	t.Run("--time-limit", func(t *testing.T) {
		dir := ociBundle(t, runnableSpec)
		status, _, stderr := stockadeRun(t, "--bundle", dir, "--time-limit", "200ms", "--", "sleep", "10")
		assert.Equal(t, 128+9, status, "stderr: %s", stderr)
	})
	t.Run("a flag the config decides", func(t *testing.T) {
		status, _, stderr := stockadeRun(t, "--bundle", t.TempDir(), "--memory", "1g")
		assert.Equal(t, exitUsage, status)
		assert.Contains(t, stderr, "--memory cannot be combined with --bundle")
	})
	t.Run("no config.json", func(t *testing.T) {
		status, _, stderr := stockadeRun(t, "--bundle", t.TempDir())
		assert.Equal(t, exitUsage, status)
		assert.Contains(t, stderr, "config.json: no such file or directory")
	})
}
