//go:build linux && (amd64 || arm64)

package sandbox

import (
	"encoding/binary"
	"path"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/initproc"
	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/seccomp"
	"github.com/stockade/stockade/internal/sysplan"
)

// The raw path's confinement: what the command, and each process Exec
// starts, does between its setup and its exec.

// parentDeathSteps set the parent-death signal, which a change of ids
// clears, once the child's ids are final. Should the parent have died
// before, the release pipe, whose write end it holds until the exec, reads
// as hung up.
func parentDeathSteps(b *sysplan.Builder, rp *rawProgram) {
	imm := sysplan.Imm[int]
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_PRCTL, imm(unix.PR_SET_PDEATHSIG), imm(int(unix.SIGKILL)))
	if rp.release.IsNil() {
		return
	}
	// A struct pollfd: the descriptor, a copy of the pipe's, saved over
	// all eight bytes, leaves no events asked for; a hang-up is reported
	// all the same.
	pfd := b.Alloc(8)
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_FCNTL, sysplan.Load(rp.release), imm(unix.F_DUPFD_CLOEXEC), imm(0)).Save(pfd)
	ts := b.Alloc(16)
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_PPOLL, sysplan.Ptr(pfd), imm(1), sysplan.Ptr(ts), imm(0), imm(0)).Expect(0)
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_CLOSE, sysplan.Load(pfd))
}

// seccompStep installs the filter f.
func seccompStep(b *sysplan.Builder, st int, f *seccomp.Filter) {
	prog := f.Instructions()
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(prog))), len(prog)*int(unsafe.Sizeof(prog[0])))
	insns := b.Bytes(raw)
	fprog := b.Alloc(16)
	b.PutU64(fprog, uint64(len(prog)))
	b.PutPtr(fprog.Field(8), insns)
	b.Syscall(st, unix.SYS_SECCOMP, sysplan.Imm(unix.SECCOMP_SET_MODE_FILTER), sysplan.Imm(0), sysplan.Ptr(fprog))
}

// confineSteps drops every privilege as the init's dropPrivileges does,
// for the command itself: the bounding set, the command's ids, the kept
// capabilities in every set (ambient ones too), no_new_privs, the Landlock domain and the seccomp filter, last.
func confineSteps(b *sysplan.Builder, spec *proto.Spec, id identity, rp *rawProgram) error {
	imm := sysplan.Imm[int]
	kept := map[int]bool{}
	for _, c := range spec.Caps {
		kept[c] = true
	}
	st := b.Stage("capabilities", "")
	if len(spec.Caps) > 0 && spec.UID != 0 {
		b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_SET_KEEPCAPS), imm(1))
	}
	for c := 0; c <= linux.LastCap(); c++ {
		if !kept[c] {
			b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAPBSET_DROP), imm(c))
		}
	}
	if spec.NewPrivs {
		// Without no_new_privs only CAP_SYS_ADMIN, which the ids' change
		// below drops, allows the filter and the domain: so before it,
		// and every call after it must pass the filter.
		if err := filterSteps(b, spec, rp); err != nil {
			return err
		}
	}
	if spec.SetGroups {
		if len(spec.Groups) == 0 {
			b.Syscall(b.Stage("setgroups", ""), unix.SYS_SETGROUPS, imm(0), imm(0))
		} else {
			list := make([]byte, 4*len(spec.Groups))
			for i, g := range spec.Groups {
				binary.NativeEndian.PutUint32(list[4*i:], uint32(g))
			}
			b.Syscall(b.Stage("setgroups", ""), unix.SYS_SETGROUPS, imm(len(spec.Groups)), sysplan.Ptr(b.Bytes(list)))
		}
	}
	if spec.Umask >= 0 {
		b.Syscall(b.Stage("umask", ""), unix.SYS_UMASK, imm(spec.Umask))
	}
	b.Syscall(b.Stage("setresgid", ""), unix.SYS_SETRESGID, imm(spec.GID), imm(spec.GID), imm(spec.GID))
	b.Syscall(b.Stage("setresuid", ""), unix.SYS_SETRESUID, imm(spec.UID), imm(spec.UID), imm(spec.UID))
	parentDeathSteps(b, rp)
	// struct __user_cap_header_struct, then two __user_cap_data_struct.
	hdr := b.Alloc(8 + 24)
	b.PutU32(hdr, unix.LINUX_CAPABILITY_VERSION_3)
	var set [2]uint32
	for _, c := range spec.Caps {
		set[c/32] |= 1 << (uint(c) % 32)
	}
	for i := range set {
		d := hdr.Field(8 + 12*i)
		b.PutU32(d, set[i])          // effective
		b.PutU32(d.Field(4), set[i]) // permitted
		b.PutU32(d.Field(8), set[i]) // inheritable
	}
	b.Syscall(st, unix.SYS_CAPSET, sysplan.Ptr(hdr), sysplan.Ptr(hdr.Field(8)))
	b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAP_AMBIENT), imm(unix.PR_CAP_AMBIENT_CLEAR_ALL), imm(0), imm(0), imm(0))
	// Root gets the kept ones at execve anyway; it holds them as ambient
	// too, as an OCI spec's root does (and loses them, as any process,
	// when it changes to another user).
	for _, c := range spec.Caps {
		b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAP_AMBIENT), imm(unix.PR_CAP_AMBIENT_RAISE), imm(c), imm(0), imm(0))
	}
	if spec.NewPrivs {
		return nil
	}
	b.Syscall(b.Stage("no-new-privs", ""), unix.SYS_PRCTL, imm(unix.PR_SET_NO_NEW_PRIVS), imm(1), imm(0), imm(0), imm(0))
	return filterSteps(b, spec, rp)
}

// filterSteps enforce the Landlock domain and then the seccomp filter,
// which may deny the Landlock calls.
func filterSteps(b *sysplan.Builder, spec *proto.Spec, rp *rawProgram) error {
	if spec.Landlock != nil {
		landlockSteps(b, spec.Landlock, spec.LandlockStrict, rp.landlock)
	}
	if len(spec.Seccomp) > 0 {
		var f seccomp.Filter
		if err := f.UnmarshalBinary(spec.Seccomp); err != nil {
			return err
		}
		seccompStep(b, b.Stage("seccomp", ""), &f)
	}
	return nil
}

// landlockSteps enforces r on the child. In best effort a failure skips
// the rest and leaves its errno in the cell result; strict, it fails the
// start.
func landlockSteps(b *sysplan.Builder, r *landlock.Ruleset, strict bool, result sysplan.Ref) {
	st := b.Stage("landlock", "")
	done := b.NewLabel()
	fail := func(s *sysplan.Step) *sysplan.Step {
		if !strict {
			s.OnErr(sysplan.AnyErrno, done)
		}
		return s.Save(result)
	}
	attr := b.Alloc(24)
	b.PutU64(attr, r.HandledFS)
	b.PutU64(attr.Field(8), r.HandledNet)
	b.PutU64(attr.Field(16), r.Scoped)
	size := 8
	switch {
	case r.Scoped != 0:
		size = 24
	case r.HandledNet != 0:
		size = 16
	}
	rs, root := b.Cell(), b.Cell()
	after2 := b.NewLabel()
	b.PutU64(rs, ^uint64(0))
	b.PutU64(root, ^uint64(0))
	// Rule paths are resolved from the root, not the working directory.
	fail(b.Syscall(st, unix.SYS_OPENAT, sysplan.Imm(unix.AT_FDCWD), sysplan.Ptr(b.String("/")), sysplan.Imm(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC))).Save(root)
	b.PutU64(result, 1) // not in force until restrict_self says so
	fail(b.Syscall(st, unix.SYS_LANDLOCK_CREATE_RULESET, sysplan.Ptr(attr), sysplan.Imm(size), sysplan.Imm(0))).Save(rs)
	how := b.Alloc(24)
	b.PutU64(how, unix.O_PATH|unix.O_CLOEXEC)
	b.PutU64(how.Field(16), unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	for _, p := range r.Paths {
		// struct landlock_path_beneath_attr is packed: the access rights,
		// then the descriptor, which the open saves straight into it; fa
		// is the same rule with the rights a file can take.
		pa, fa := b.Alloc(16), b.Alloc(16)
		b.PutU64(pa, p.Access)
		b.PutU64(fa, p.Access&landlock.FileRights)
		skip, file, next := b.NewLabel(), b.NewLabel(), b.NewLabel()
		// A rule whose path cannot be resolved inside the root is left
		// out, as Apply does: a rule only ever allows.
		b.Syscall(st, unix.SYS_OPENAT2, sysplan.Load(root), sysplan.Ptr(b.String(p.Path)), sysplan.Ptr(how), sysplan.Imm(24)).
			Save(pa.Field(8)).OnErr(sysplan.AnyErrno, skip)
		b.PutU64(fa.Field(8), 0)
		// The kernel refuses directory rights on a file: then only the
		// file rights.
		fail(b.Syscall(st, unix.SYS_LANDLOCK_ADD_RULE, sysplan.Load(rs), sysplan.Imm(unix.LANDLOCK_RULE_PATH_BENEATH), sysplan.Ptr(pa), sysplan.Imm(0)).
			OnErr(uint64(unix.EINVAL), file))
		b.Jump(next)
		b.Place(file)
		b.Syscall(st, unix.SYS_FCNTL, sysplan.Load(pa.Field(8)), sysplan.Imm(unix.F_DUPFD_CLOEXEC), sysplan.Imm(0)).Save(fa.Field(8))
		fail(b.Syscall(st, unix.SYS_LANDLOCK_ADD_RULE, sysplan.Load(rs), sysplan.Imm(unix.LANDLOCK_RULE_PATH_BENEATH), sysplan.Ptr(fa), sysplan.Imm(0)))
		b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(fa.Field(8)))
		b.Place(next)
		b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(pa.Field(8)))
		b.Place(skip)
	}
	for _, p := range r.Ports {
		a := b.Alloc(16)
		b.PutU64(a, p.Access)
		b.PutU64(a.Field(8), uint64(p.Port))
		fail(b.Syscall(st, unix.SYS_LANDLOCK_ADD_RULE, sysplan.Load(rs), sysplan.Imm(2), sysplan.Ptr(a), sysplan.Imm(0)))
	}
	fail(b.Syscall(st, unix.SYS_LANDLOCK_RESTRICT_SELF, sysplan.Load(rs), sysplan.Imm(0)))
	b.Place(done)
	// The ruleset's descriptor is not close-on-exec; it may not exist.
	after := b.NewLabel()
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(rs)).OnErr(sysplan.AnyErrno, after)
	b.Place(after)
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(root)).OnErr(sysplan.AnyErrno, after2)
	b.Place(after2)
	b.Syscall(st, unix.SYS_GETPID)
}

// execSteps starts the command: its path as given when it holds a slash,
// else each directory of PATH in turn, as a shell would.
func execSteps(b *sysplan.Builder, spec *proto.Spec) {
	argv := sysplan.Ptr(b.Strings(spec.Args))
	envp := sysplan.Ptr(b.Strings(spec.Env))
	st := b.Stage("exec", spec.Path)
	if strings.Contains(spec.Path, "/") {
		b.Syscall(st, unix.SYS_EXECVE, sysplan.Ptr(b.String(spec.Path)), argv, envp)
		return
	}
	pathEnv := initproc.DefaultPath
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	dirs := strings.Split(pathEnv, ":")
	for i, dir := range dirs {
		if dir == "" {
			dir = "."
		}
		s := b.Syscall(st, unix.SYS_EXECVE, sysplan.Ptr(b.String(path.Join(dir, spec.Path))), argv, envp)
		if i < len(dirs)-1 {
			next := b.NewLabel()
			s.OnErr(uint64(unix.ENOENT), next).OnErr(uint64(unix.EACCES), next)
			b.Place(next)
		}
	}
}
