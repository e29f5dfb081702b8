//go:build linux

package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/mount"
)

// The messages travel in a small binary form written by hand: the init
// decodes the Spec on every start, and encoding/json spent an eighth of the
// init's CPU time on reflection. Every field is written in declaration
// order: integers as varints, strings and byte slices with a length, slices
// with a count. TestCodecCoversEveryField fills every field by reflection
// and checks the round trip, so a field added to a message without its
// line here fails the tests.

// ErrMalformed is returned for a message that cannot be decoded.
var ErrMalformed = errors.New("malformed message")

// maxCount bounds every length and count in a message, well above
// anything real, so that a corrupt length cannot make the decoder allocate
// without limit.
const maxCount = 1 << 20

type encoder struct{ b []byte }

func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) bytes(v []byte) { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)   { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) strs(v []string) {
	e.uint(uint64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}
func (e *encoder) ints(v []int64) {
	e.uint(uint64(len(v)))
	for _, x := range v {
		e.int(x)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrMalformed, what)
	}
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("bool")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// count reads a length or count of at most maxCount and at most left
// remaining bytes' worth of items.
func (d *decoder) count() int {
	n := d.uint()
	if n > maxCount || n > uint64(len(d.b)) {
		d.fail("length")
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) strs() []string { return list(d, d.str) }
func (d *decoder) ints() []int64  { return list(d, d.int) }

// list decodes a count and that many values, each by one; nil when there
// are none.
func list[T any](d *decoder, one func() T) []T {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]T, n)
	for i := range v {
		v[i] = one()
	}
	return v
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// MarshalBinary encodes the spec.
func (s *Spec) MarshalBinary() ([]byte, error) {
	e := &encoder{b: make([]byte, 0, 4096)}
	r := &s.Plan.Root
	e.str(r.Dir)
	e.bool(r.Writable)
	e.int(r.Size)
	e.int(r.Inodes)
	e.int(int64(r.FD))
	e.bool(r.Overlay != nil)
	if o := r.Overlay; o != nil {
		e.strs(o.Lower)
		e.str(o.Upper)
		e.int(o.UpperSize)
		fds := make([]int64, len(o.FDs))
		for i, fd := range o.FDs {
			fds[i] = int64(fd)
		}
		e.ints(fds)
		e.int(int64(o.SendFD))
	}
	e.str(string(r.Propagation))
	e.uint(uint64(len(s.Plan.Mounts)))
	for i := range s.Plan.Mounts {
		m := &s.Plan.Mounts[i]
		e.str(string(m.Kind))
		e.str(m.Source)
		e.str(m.Target)
		e.bool(m.Writable)
		e.bool(m.ReadOnly)
		e.int(m.Size)
		e.int(m.Inodes)
		e.uint(uint64(m.Mode))
		e.int(int64(m.UID))
		e.int(int64(m.GID))
		e.bytes(m.Data)
		e.bool(m.Device)
		e.int(int64(m.FD))
		e.bool(m.Owner != nil)
		if m.Owner != nil {
			e.uint(uint64(m.Owner.UID))
			e.uint(uint64(m.Owner.GID))
		}
		e.bool(m.NoIDMap)
		e.str(string(m.Propagation))
		e.uint(m.Rdev)
	}
	e.str(s.Hostname)
	e.str(s.Path)
	e.strs(s.Args)
	e.strs(s.Env)
	e.str(s.Dir)
	e.int(int64(s.UID))
	e.int(int64(s.GID))
	e.bool(s.SetGroups)
	e.int(int64(s.ExtraFiles))
	e.bool(s.TimeNS)
	e.bool(s.Loopback)
	e.uint(uint64(len(s.Rlimits)))
	for _, rl := range s.Rlimits {
		e.int(int64(rl.Resource))
		e.uint(rl.Cur)
		e.uint(rl.Max)
	}
	e.bytes(s.Seccomp)
	caps := make([]int64, len(s.Caps))
	for i, c := range s.Caps {
		caps[i] = int64(c)
	}
	e.ints(caps)
	e.bool(s.Landlock != nil)
	if l := s.Landlock; l != nil {
		e.uint(l.HandledFS)
		e.uint(l.HandledNet)
		e.uint(l.Scoped)
		e.uint(uint64(len(l.Paths)))
		for _, p := range l.Paths {
			e.str(p.Path)
			e.uint(p.Access)
		}
		e.uint(uint64(len(l.Ports)))
		for _, p := range l.Ports {
			e.int(int64(p.Port))
			e.uint(p.Access)
		}
	}
	e.bool(s.LandlockStrict)
	e.bool(s.TTY)
	e.int(int64(s.TTYRows))
	e.int(int64(s.TTYCols))
	e.bool(s.NewPrivs)
	e.int(int64(s.Umask))
	groups := make([]int64, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = int64(g)
	}
	e.ints(groups)
	e.uint(s.DefaultSignals)
	e.uint(uint64(len(s.Sysctls)))
	for _, sc := range s.Sysctls {
		e.str(sc.Name)
		e.str(sc.Value)
	}
	return e.b, nil
}

// UnmarshalBinary decodes a spec encoded by MarshalBinary.
func (s *Spec) UnmarshalBinary(b []byte) error {
	d := &decoder{b: b}
	r := &s.Plan.Root
	r.Dir = d.str()
	r.Writable = d.bool()
	r.Size = d.int()
	r.Inodes = d.int()
	r.FD = int(d.int())
	if d.bool() {
		o := &mount.Overlay{Lower: d.strs(), Upper: d.str(), UpperSize: d.int()}
		if fds := d.ints(); len(fds) > 0 {
			o.FDs = make([]int, len(fds))
			for i, fd := range fds {
				o.FDs[i] = int(fd)
			}
		}
		o.SendFD = int(d.int())
		r.Overlay = o
	}
	r.Propagation = mount.Propagation(d.str())
	if n := d.count(); n > 0 {
		s.Plan.Mounts = make([]mount.Mount, n)
		for i := range s.Plan.Mounts {
			m := &s.Plan.Mounts[i]
			m.Kind = mount.Kind(d.str())
			m.Source = d.str()
			m.Target = d.str()
			m.Writable = d.bool()
			m.ReadOnly = d.bool()
			m.Size = d.int()
			m.Inodes = d.int()
			m.Mode = fs.FileMode(d.uint())
			m.UID = int(d.int())
			m.GID = int(d.int())
			m.Data = d.bytes()
			m.Device = d.bool()
			m.FD = int(d.int())
			if d.bool() {
				m.Owner = &mount.Owner{UID: uint32(d.uint()), GID: uint32(d.uint())}
			}
			m.NoIDMap = d.bool()
			m.Propagation = mount.Propagation(d.str())
			m.Rdev = d.uint()
		}
	}
	s.Hostname = d.str()
	s.Path = d.str()
	s.Args = d.strs()
	s.Env = d.strs()
	s.Dir = d.str()
	s.UID = int(d.int())
	s.GID = int(d.int())
	s.SetGroups = d.bool()
	s.ExtraFiles = int(d.int())
	s.TimeNS = d.bool()
	s.Loopback = d.bool()
	if n := d.count(); n > 0 {
		s.Rlimits = make([]Rlimit, n)
		for i := range s.Rlimits {
			s.Rlimits[i] = Rlimit{Resource: int(d.int()), Cur: d.uint(), Max: d.uint()}
		}
	}
	s.Seccomp = d.bytes()
	if caps := d.ints(); len(caps) > 0 {
		s.Caps = make([]int, len(caps))
		for i, c := range caps {
			s.Caps[i] = int(c)
		}
	}
	if d.bool() {
		l := &landlock.Ruleset{HandledFS: d.uint(), HandledNet: d.uint(), Scoped: d.uint()}
		if n := d.count(); n > 0 {
			l.Paths = make([]landlock.PathRule, n)
			for i := range l.Paths {
				l.Paths[i] = landlock.PathRule{Path: d.str(), Access: d.uint()}
			}
		}
		if n := d.count(); n > 0 {
			l.Ports = make([]landlock.PortRule, n)
			for i := range l.Ports {
				l.Ports[i] = landlock.PortRule{Port: int(d.int()), Access: d.uint()}
			}
		}
		s.Landlock = l
	}
	s.LandlockStrict = d.bool()
	s.TTY = d.bool()
	s.TTYRows = int(d.int())
	s.TTYCols = int(d.int())
	s.NewPrivs = d.bool()
	s.Umask = int(d.int())
	if groups := d.ints(); len(groups) > 0 {
		s.Groups = make([]int, len(groups))
		for i, g := range groups {
			s.Groups[i] = int(g)
		}
	}
	s.DefaultSignals = d.uint()
	if n := d.count(); n > 0 {
		s.Sysctls = make([]Sysctl, n)
		for i := range s.Sysctls {
			s.Sysctls[i] = Sysctl{Name: d.str(), Value: d.str()}
		}
	}
	return d.done()
}

// MarshalBinary encodes the request.
func (q *Request) MarshalBinary() ([]byte, error) {
	e := &encoder{}
	e.bool(q.Go)
	cpus := make([]int64, len(q.CPUs))
	for i, c := range q.CPUs {
		cpus[i] = int64(c)
	}
	e.ints(cpus)
	e.int(int64(q.Signal))
	e.int(q.Target)
	e.bool(q.Exec != nil)
	if x := q.Exec; x != nil {
		e.int(x.ID)
		e.str(x.Path)
		e.strs(x.Args)
		e.strs(x.Env)
		e.str(x.Dir)
		e.int(int64(x.UID))
		e.int(int64(x.GID))
		e.bool(x.TTY)
		e.int(int64(x.TTYRows))
		e.int(int64(x.TTYCols))
	}
	e.bool(q.Close)
	return e.b, nil
}

// UnmarshalBinary decodes a request encoded by MarshalBinary.
func (q *Request) UnmarshalBinary(b []byte) error {
	d := &decoder{b: b}
	q.Go = d.bool()
	if cpus := d.ints(); len(cpus) > 0 {
		q.CPUs = make([]int, len(cpus))
		for i, c := range cpus {
			q.CPUs[i] = int(c)
		}
	}
	q.Signal = int(d.int())
	q.Target = d.int()
	if d.bool() {
		q.Exec = &Exec{
			ID:   d.int(),
			Path: d.str(),
			Args: d.strs(),
			Env:  d.strs(),
			Dir:  d.str(),
			UID:  int(d.int()),
			GID:  int(d.int()),
		}
		x := q.Exec
		x.TTY = d.bool()
		x.TTYRows = int(d.int())
		x.TTYCols = int(d.int())
	}
	q.Close = d.bool()
	return d.done()
}

// MarshalBinary encodes the report.
func (r *Report) MarshalBinary() ([]byte, error) {
	e := &encoder{b: make([]byte, 0, 128)}
	e.str(string(r.Kind))
	e.int(r.ID)
	e.str(r.Stage)
	e.str(r.Path)
	e.int(int64(r.Errno))
	e.str(r.Message)
	e.int(int64(r.Pid))
	e.int(int64(r.Status))
	e.int(r.UserNanos)
	e.int(r.SysNanos)
	e.int(r.MaxRSSKiB)
	e.ints(r.Marks)
	e.bool(r.Landlocked)
	return e.b, nil
}

// UnmarshalBinary decodes a report encoded by MarshalBinary.
func (r *Report) UnmarshalBinary(b []byte) error {
	d := &decoder{b: b}
	r.Kind = Kind(d.str())
	r.ID = d.int()
	r.Stage = d.str()
	r.Path = d.str()
	r.Errno = int(d.int())
	r.Message = d.str()
	r.Pid = int(d.int())
	r.Status = int(d.int())
	r.UserNanos = d.int()
	r.SysNanos = d.int()
	r.MaxRSSKiB = d.int()
	r.Marks = d.ints()
	r.Landlocked = d.bool()
	return d.done()
}
