//go:build linux && (amd64 || arm64)

package mount

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/sysplan"
)

// overlay adds the steps that leave in c.root a detached overlay mount, as
// Apply's makeOverlay makes it (see overlay_linux.go).
func (c *compiler) overlay(o *Overlay) {
	b := c.b
	stage := b.Stage("overlay-staging", "/")
	stg := b.Cell()
	c.newTmpfs(stage, stagingSize, stagingInodes, 0o700, 0, 0, 0, stg)
	for i := range o.Lower {
		b.Syscall(stage, unix.SYS_MKDIRAT, sysplan.Load(stg), c.str(strconv.Itoa(i)), sysplan.Imm(0o700))
	}
	b.Syscall(stage, unix.SYS_MKDIRAT, sysplan.Load(stg), c.str("u"), sysplan.Imm(0o700))
	b.Syscall(stage, unix.SYS_MOVE_MOUNT, sysplan.Load(stg), c.str(""),
		sysplan.Imm(unix.AT_FDCWD), c.str("/"), sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH))
	stageAt := func(stage int, src sysplan.Ref, name string) {
		b.Syscall(stage, unix.SYS_MOVE_MOUNT, sysplan.Load(src), c.str(""), sysplan.Load(stg), c.str(name),
			sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH))
		c.close(src)
	}
	for i, l := range o.Lower {
		stage := b.Stage("overlay-lower", l)
		src := c.mfd
		if c.clone {
			src = b.Cell()
			c.out.OverlayFDs = append(c.out.OverlayFDs, src)
		} else {
			c.cloneTree(stage, sysplan.Imm(unix.AT_FDCWD), l, lowerAttrs, src)
		}
		stageAt(stage, src, strconv.Itoa(i))
	}
	switch {
	case c.clone:
		up := b.Cell()
		c.out.OverlayFDs = append(c.out.OverlayFDs, up)
		stageAt(b.Stage("overlay-upper", o.Upper), up, "u")
	case o.Upper != "":
		stage := b.Stage("overlay-upper", o.Upper)
		c.cloneTree(stage, sysplan.Imm(unix.AT_FDCWD), o.Upper, upperAttrs, c.mfd)
		stageAt(stage, c.mfd, "u")
	default:
		stage := b.Stage("overlay-upper", "tmpfs")
		// The mount's descriptor lives in the SCM_RIGHTS message that may
		// send it (cmsg_len, level, type, then the descriptor).
		cmsg := b.Alloc(24)
		up := cmsg.Field(16)
		c.newTmpfs(stage, o.UpperSize, 0, 0o755, 0, 0, 0, up)
		for _, d := range []string{"upper", "work"} {
			b.Syscall(stage, unix.SYS_MKDIRAT, sysplan.Load(up), c.str(d), sysplan.Imm(0o755))
		}
		if o.SendFD > 0 {
			c.out.SendFD = b.Cell()
			b.PutU64(cmsg, uint64(unix.CmsgLen(4)))
			b.PutU32(cmsg.Field(8), unix.SOL_SOCKET)
			b.PutU32(cmsg.Field(12), unix.SCM_RIGHTS)
			iov := b.Alloc(16)
			b.PutPtr(iov, b.String("u"))
			b.PutU64(iov.Field(8), 1)
			msg := b.Alloc(56) // struct msghdr
			b.PutPtr(msg.Field(16), iov)
			b.PutU64(msg.Field(24), 1)
			b.PutPtr(msg.Field(32), cmsg)
			b.PutU64(msg.Field(40), uint64(unix.CmsgSpace(4)))
			b.Syscall(stage, unix.SYS_SENDMSG, sysplan.Load(c.out.SendFD), sysplan.Ptr(msg), sysplan.Imm(unix.MSG_NOSIGNAL)).Expect(1)
			c.close(c.out.SendFD)
		}
		stageAt(stage, up, "u")
	}
	stage = b.Stage("overlay", "/")
	b.Syscall(stage, unix.SYS_FCHDIR, sysplan.Load(stg))
	c.newMount(stage, "overlay", overlayOptions(len(o.Lower)), overlayAttrs, c.root)
	// The pivot sets the working directory anew.
	b.Syscall(b.Stage("overlay-staging", "/"), unix.SYS_UMOUNT2, c.str("."), sysplan.Imm(unix.MNT_DETACH))
	c.close(stg)
}
