// Package vmtest ties stockade's tests to the cgroup v2 VM that CI boots
// with .ci/vm/run.
//
// The development and CI machines have cgroup v1 controllers only, so the
// cgroup v2 code paths are tested in a small qemu VM: .ci/vm/run builds a
// package's tests as a static binary, boots Debian's cloud kernel with the
// binary in an initramfs, and runs it there as root on a unified cgroup2
// hierarchy with every controller enabled. Inside the VM the environment has
// STOCKADE_VM=cgroup2 and STOCKADE_REQUIRE_PRIVILEGED=1.
//
// A test that only means something inside that VM calls Require first. On
// any other machine it is skipped, even under STOCKADE_REQUIRE_PRIVILEGED=1,
// because the VM run is what makes it run; inside the VM the strict rules of
// internal/testutil apply as everywhere else.
//
// The package's own tests prove the VM: cgroup2 is mounted with the
// controllers enabled, CLONE_INTO_CGROUP places a child in a group whose
// pids.max holds, memory.max ends in an OOM kill, and user, pid and mount
// namespaces, overlayfs and pivot_root work.
package vmtest
