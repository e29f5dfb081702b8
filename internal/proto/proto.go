//go:build linux

// Package proto is the wire protocol between a sandbox's parent and its init
// stage. The two ends share a SOCK_SEQPACKET socket pair: the parent's end is
// its own, the init's end is inherited as file descriptor 3. Each message is
// one message in one packet, so that message boundaries come from the
// kernel and a half-written message can never be read.
//
// The conversation is short. The parent queues the Spec before it even
// starts the init, so that the init can build the sandbox at once, and sends
// a Request with Go set once the init is in its cgroup and network. The init
// waits for that before it starts the command, and answers with a Report of
// kind Started, once the command is running, or Failed; when the command
// ends, the init sends a Report of kind Exited just before it exits itself. A closed socket
// on either side means the other side is gone: the init then kills the
// sandbox. Messages are encoded by hand (see codec.go).
package proto

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/mount"
)

// InitFD is the descriptor number of the init's end of the socket.
const InitFD = 3

// Spec is everything the init stage needs to build the sandbox and start
// the command. It never travels in argv or the environment.
type Spec struct {
	Plan     mount.Plan
	Hostname string
	// Path is the command as given; the init looks it up in the new root
	// using PATH from Env when it holds no slash. Empty means the sandbox
	// has no command of its own: the init waits for Exec requests until
	// the parent closes it.
	Path string
	Args []string
	Env  []string
	Dir  string
	// UID and GID are the ids the command runs as, inside the sandbox.
	UID int
	GID int
	// SetGroups says whether the init may call setgroups(2): false when the
	// user namespace was set up by an unprivileged caller.
	SetGroups bool
	// ExtraFiles is how many descriptors after InitFD the init received for
	// the command, which gets them as 3, 4, ...
	ExtraFiles int
	// TimeNS asks for a time namespace whose monotonic and boot-time clocks
	// start near zero.
	TimeNS bool
	// Loopback asks the init to bring lo up: its network namespace is new
	// and its own. A namespace the parent prepared has lo up already.
	Loopback bool
	Rlimits  []Rlimit
	// Seccomp is a compiled filter (seccomp.Filter.MarshalBinary) that the
	// init loads on every one of its threads just before it starts the
	// command, which inherits it. Empty means no filter.
	Seccomp []byte
	// Caps are the capabilities, by number, that the sandbox's processes
	// keep; nil means none.
	Caps []int
	// Landlock, when set, is the Landlock domain the init enforces on its
	// locked thread before it forks the command, already fitted to this
	// kernel. With LandlockStrict a failure to enforce it fails the start;
	// without, the start goes on and the Started report says so.
	Landlock       *landlock.Ruleset
	LandlockStrict bool
	// TTY gives the command a pseudo-terminal of the sandbox's devpts as
	// its standard streams and controlling terminal, of TTYRows by
	// TTYCols; the init sends the master with its Started report.
	TTY              bool
	TTYRows, TTYCols int
	// NewPrivs leaves no_new_privs unset. The Landlock domain and the
	// seccomp filter are then put in place before the ids change and the
	// capabilities are dropped, while CAP_SYS_ADMIN in the sandbox's user
	// namespace allows them without it.
	NewPrivs bool
	// Umask, unless negative, is the command's file mode creation mask.
	Umask int
	// Groups are the command's supplementary groups; nil means none.
	Groups []int
	// DefaultSignals are the signals, bit n-1 for signal n, that the
	// command's process sets back to their default action before its
	// exec: those the owner ignores, which a process inherits ignored
	// across fork and exec (a typed Ctrl-C would then stop nothing).
	DefaultSignals uint64
	// Sysctls are values for the files of /proc/sys/user in the sandbox's
	// user namespace, which the init writes while it holds its
	// capabilities; a file this kernel lacks is left out.
	Sysctls []Sysctl
}

// Sysctl is the value of one file of /proc/sys/user, by its name.
type Sysctl struct {
	Name  string
	Value string
}

// Rlimit is one resource limit for the command.
type Rlimit struct {
	Resource int
	Cur      uint64
	Max      uint64
}

// Request is a message from the parent to the init after the Spec.
type Request struct {
	// Go tells the init that the parent has placed it in its cgroup and
	// network, so that it may start the command.
	Go bool
	// CPUs, with Go, are the CPUs the command may run on. The init starts
	// pinned to one CPU (it is cheaper to start that way) and gives the
	// command these back.
	CPUs []int
	// Signal, when not zero, is delivered to the process started by the
	// request with the ID Target (0 for the sandbox's own command).
	Signal int
	Target int64
	// Exec, when set, starts a process; the packet carries its standard
	// input, output and error and then its extra files as SCM_RIGHTS.
	Exec *Exec
	// Close ends a sandbox: the init kills every process, reaps them, and
	// exits.
	Close bool
}

// Exec is a request to start one more process in a running sandbox, with
// the same namespaces, root, limits and privileges as its command.
type Exec struct {
	// ID names the process in the reports about it; the parent picks it,
	// starting at 1.
	ID   int64
	Path string
	Args []string
	Env  []string
	Dir  string
	UID  int
	GID  int
	// TTY gives the process a pseudo-terminal of the sandbox's devpts, of
	// TTYRows by TTYCols, as its standard streams and controlling
	// terminal (the request then carries no streams); the init sends the
	// master with the Started report.
	TTY              bool
	TTYRows, TTYCols int
}

// Kind tells what a Report is about.
type Kind string

// The kinds of Report.
const (
	// Failed: a setup step failed; Stage, Path, Errno and Message say which
	// and why. The init exits after sending it.
	Failed Kind = "failed"
	// Started: the command runs; Pid is its pid inside the sandbox.
	Started Kind = "started"
	// Exited: the command ended; Status is its wait status and the times
	// cover every process of the sandbox the init reaped. With an ID, a
	// process started by that Exec request ended; its times are its own
	// and those of the children it waited for.
	Exited Kind = "exited"
	// Closed: a sandbox without a command of its own was closed; the times
	// cover every process the init reaped.
	Closed Kind = "closed"
)

// Report is a message from the init to the parent.
type Report struct {
	Kind Kind
	// ID is the Exec request the report is about, or 0 for the sandbox
	// itself and its own command.
	ID      int64
	Stage   string
	Path    string
	Errno   int
	Message string

	Pid int

	Status    int
	UserNanos int64
	SysNanos  int64
	MaxRSSKiB int64
	// Marks are the CLOCK_MONOTONIC readings, in nanoseconds, at which the
	// init reached each Mark, in order; the clock is the same in the parent,
	// so the parent can time every stage of a start.
	Marks []int64
	// Landlocked, in a Started report, says that the Spec's Landlock
	// domain is enforced; when it is not, Message says why.
	Landlocked bool
}

// Mark is a point in the init stage's start, indexing Report.Marks.
type Mark int

// The marks of a start, in the order the init passes them.
const (
	MarkEntry    Mark = iota // the init's package initialisation took over
	MarkSpec                 // the Spec was read
	MarkMounts               // the root file system is in place
	MarkSystem               // hostname, loopback, limits and lookups are done
	MarkGo                   // the parent's go-ahead arrived
	MarkPlaced               // the cgroup namespace and CPU affinity are set
	MarkConfined             // capabilities, no_new_privs, Landlock and seccomp are in force
	MarkStarted              // the command runs
	NumMarks
)

// Monotonic returns CLOCK_MONOTONIC in nanoseconds.
func Monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// WaitStatus returns Status as a syscall.WaitStatus.
func (r *Report) WaitStatus() syscall.WaitStatus { return syscall.WaitStatus(r.Status) }

// Message is what travels on the socket: a Spec, a Request or a Report.
type Message interface {
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// Send writes m as one packet on the blocking socket fd.
func Send(fd int, m Message) error { return SendFiles(fd, m, nil) }

// SendFiles writes m as one packet on the blocking socket fd, with files
// passed as SCM_RIGHTS.
func SendFiles(fd int, m Message, files []int) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		oob = unix.UnixRights(files...)
	}
	for {
		err = unix.Sendmsg(fd, b, oob, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// MaxFiles bounds the descriptors one packet may carry, a packed
// message's memory file included.
const MaxFiles = 64

// MaxPacket is the longest message sent as a packet of its own. A socket's
// send buffer bounds a packet (net.core.wmem_default, 208 KiB by default,
// and only a privileged process may raise it), and the parent queues the
// Spec before the init even runs, so a longer message travels in a memory
// file instead: see Pack.
const MaxPacket = 64 << 10

// maxPacked bounds a packed message, well above what execve takes (its
// arguments and environment share at most 6 MiB).
const maxPacked = 256 << 20

// inFile is the one byte of a packet whose message is in the memory file
// it carries as its first descriptor. No message encodes to a single byte.
const inFile = 0xff

// Pack returns the packet that carries the encoded message b: b itself
// when it is at most MaxPacket bytes long, with mfd -1; else the byte
// inFile and mfd, a memory file holding b, which goes first among the
// packet's descriptors and which the caller closes once the packet is
// sent. Recv and RecvFiles unpack it and close their copy.
func Pack(b []byte) (pkt []byte, mfd int, err error) {
	if len(b) <= MaxPacket {
		return b, -1, nil
	}
	fd, err := unix.MemfdCreate("stockade-message", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, -1, fmt.Errorf("pack: %w", err)
	}
	for rest := b; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return nil, -1, fmt.Errorf("pack: %w", err)
		}
		rest = rest[n:]
	}
	return []byte{inFile}, fd, nil
}

// unpack returns the message a received packet carries, and the
// descriptors that came with it for the message.
func unpack(b []byte, files []int) ([]byte, []int, error) {
	if len(b) != 1 || b[0] != inFile {
		return b, files, nil
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("%w: packed message without its file", ErrMalformed)
	}
	fd := files[0]
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		closeFDs(files[1:])
		return nil, nil, fmt.Errorf("receive: %w", err)
	}
	if st.Size <= MaxPacket || st.Size > maxPacked {
		closeFDs(files[1:])
		return nil, nil, fmt.Errorf("%w: packed message of %d bytes", ErrMalformed, st.Size)
	}
	msg := make([]byte, st.Size)
	for off := 0; off < len(msg); {
		n, err := unix.Pread(fd, msg[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err == nil && n == 0 {
			err = unix.EIO
		}
		if err != nil {
			closeFDs(files[1:])
			return nil, nil, fmt.Errorf("receive: %w", err)
		}
		off += n
	}
	return msg, files[1:], nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// RecvFiles reads one message and the descriptors it carries from the
// blocking socket fd, unpacking a message that came in a memory file (see
// Pack). The descriptors are close-on-exec. It returns ErrClosed when the
// other end is gone.
func RecvFiles(fd int) ([]byte, []int, error) {
	oob := make([]byte, unix.CmsgSpace(4*MaxFiles))
	for {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("receive: %w", err)
		}
		if n == 0 {
			return nil, nil, ErrClosed
		}
		b := make([]byte, n)
		n, oobn, _, _, err := unix.Recvmsg(fd, b, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("receive: %w", err)
		}
		var files []int
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, nil, fmt.Errorf("receive: %w", err)
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					return nil, nil, fmt.Errorf("receive: %w", err)
				}
				files = append(files, fds...)
			}
		}
		return unpack(b[:n], files)
	}
}

// Recv reads one message from the blocking socket fd into m, unpacking
// one that came in a memory file (see Pack). It returns ErrClosed when the
// other end is gone.
func Recv(fd int, m Message) error {
	b, files, err := RecvFiles(fd)
	if err != nil {
		return err
	}
	closeFDs(files) // none are expected
	return m.UnmarshalBinary(b)
}

// ErrClosed means the other end of the socket has closed it.
var ErrClosed = errors.New("peer closed the socket")
