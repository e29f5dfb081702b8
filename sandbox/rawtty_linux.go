//go:build linux && (amd64 || arm64)

package sandbox

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/sysplan"
)

// ttySteps give the command, on the raw path, a terminal of the
// sandbox's own devpts (see the package documentation): run by the
// command's own process after its setsid and before its confinement, they
// open the devpts instance's ptmx inside the new root, unlock it, set its
// size, open the peer, make it the standard streams and the controlling
// terminal, and send the master to the owner on the socket in rp.ttySock.
// The master is close-on-exec and closed before the exec: the command
// never holds it.
func ttySteps(b *sysplan.Builder, spec *proto.Spec, id identity, rp *rawProgram) {
	imm := sysplan.Imm[int]
	rp.ttySize = b.Cell()
	st := b.Stage("tty", "/dev/pts/ptmx")
	// The message: one byte, and the master as SCM_RIGHTS in a struct
	// cmsghdr (cmsg_len, level, type, then the descriptor, which the open
	// saves straight into it).
	cmsg := b.Alloc(24)
	b.PutU64(cmsg, uint64(unix.CmsgLen(4)))
	b.PutU32(cmsg.Field(8), unix.SOL_SOCKET)
	b.PutU32(cmsg.Field(12), unix.SCM_RIGHTS)
	master := cmsg.Field(16)
	iov := b.Alloc(16)
	b.PutPtr(iov, b.String("t"))
	b.PutU64(iov.Field(8), 1)
	msg := b.Alloc(56) // struct msghdr
	b.PutPtr(msg.Field(16), iov)
	b.PutU64(msg.Field(24), 1)
	b.PutPtr(msg.Field(32), cmsg)
	b.PutU64(msg.Field(40), uint64(unix.CmsgSpace(4)))

	b.Syscall(st, unix.SYS_OPENAT, imm(unix.AT_FDCWD), sysplan.Ptr(b.String("/dev/pts/ptmx")),
		imm(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NOFOLLOW)).Save(master)
	b.Syscall(st, unix.SYS_IOCTL, sysplan.Load(master), imm(unix.TIOCSPTLCK), sysplan.Ptr(b.Cell()))
	// struct winsize: the rows and columns, which the owner sets at each
	// launch (ttySize), so that one program serves every size.
	b.Syscall(st, unix.SYS_IOCTL, sysplan.Load(master), imm(unix.TIOCSWINSZ), sysplan.Ptr(rp.ttySize))
	peer := b.Cell()
	b.Syscall(st, unix.SYS_IOCTL, sysplan.Load(master), imm(unix.TIOCGPTPEER), imm(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)).Save(peer)
	// The terminal is the command's user's, as login makes it. The process
	// has its init ids here, root of the sandbox's user namespace, which
	// owns the devpts instance.
	if spec.UID != id.initUID || spec.GID != id.initGID {
		b.Syscall(st, unix.SYS_FCHOWN, sysplan.Load(peer), imm(spec.UID), imm(spec.GID))
	}
	for i := range 3 {
		b.Syscall(b.Stage("stdio", ""), unix.SYS_DUP3, sysplan.Load(peer), imm(i), imm(0))
	}
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(peer))
	b.Syscall(st, unix.SYS_IOCTL, imm(0), imm(unix.TIOCSCTTY), imm(0))
	b.Syscall(st, unix.SYS_SENDMSG, sysplan.Load(rp.ttySock), sysplan.Ptr(msg), imm(unix.MSG_NOSIGNAL)).Expect(1)
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(master))
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(rp.ttySock))
}

// ttySocket returns the two ends of the socket on which a raw start's
// command sends the owner its terminal's master: the owner's, non-blocking,
// and the child's, at minFD or above. Both are close-on-exec.
func ttySocket(minFD int) (own, child int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, -1, err
	}
	c, err := unix.FcntlInt(uintptr(fds[1]), unix.F_DUPFD_CLOEXEC, minFD)
	unix.Close(fds[1])
	if err != nil {
		unix.Close(fds[0])
		return -1, -1, err
	}
	return fds[0], c, nil
}

// recvTTY receives the master that the command sent on sock before its
// exec.
func recvTTY(sock int) (*os.File, error) {
	fd, err := recvFD(sock)
	if err != nil {
		return nil, setupErr("tty", "", err)
	}
	return masterFile(fd)
}

// recvFD receives one descriptor, close-on-exec, on the non-blocking
// socket sock.
func recvFD(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil {
		return -1, err
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return -1, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, errors.New("expected one descriptor")
	}
	return fds[0], nil
}

// ttySize is the value of a raw program's ttySize cell for a terminal of
// rows by cols: the first half of a struct winsize.
func ttySize(rows, cols int) uint64 { return uint64(uint16(rows)) | uint64(uint16(cols))<<16 }
