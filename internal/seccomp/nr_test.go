//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// nativeNumbers are x/sys's numbers, on the architecture running the tests,
// of the calls the default policy and its tests name.
var nativeNumbers = map[string]int{
	"read": unix.SYS_READ, "write": unix.SYS_WRITE, "openat": unix.SYS_OPENAT,
	"futex": unix.SYS_FUTEX, "execve": unix.SYS_EXECVE, "exit_group": unix.SYS_EXIT_GROUP,
	"clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3, "unshare": unix.SYS_UNSHARE,
	"setns": unix.SYS_SETNS, "mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2,
	"pivot_root": unix.SYS_PIVOT_ROOT, "fsopen": unix.SYS_FSOPEN, "fsmount": unix.SYS_FSMOUNT,
	"move_mount": unix.SYS_MOVE_MOUNT, "open_tree": unix.SYS_OPEN_TREE,
	"mount_setattr": unix.SYS_MOUNT_SETATTR, "keyctl": unix.SYS_KEYCTL, "add_key": unix.SYS_ADD_KEY,
	"request_key": unix.SYS_REQUEST_KEY, "bpf": unix.SYS_BPF, "perf_event_open": unix.SYS_PERF_EVENT_OPEN,
	"userfaultfd": unix.SYS_USERFAULTFD, "io_uring_setup": unix.SYS_IO_URING_SETUP,
	"io_uring_enter": unix.SYS_IO_URING_ENTER, "io_uring_register": unix.SYS_IO_URING_REGISTER,
	"kexec_load": unix.SYS_KEXEC_LOAD, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
	"ptrace": unix.SYS_PTRACE, "socket": unix.SYS_SOCKET, "ioctl": unix.SYS_IOCTL,
	"personality": unix.SYS_PERSONALITY, "getpid": unix.SYS_GETPID, "getppid": unix.SYS_GETPPID,
}
