//go:build linux

package mount

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name  string
		plan  Plan
		field string
	}{
		{"empty", Plan{}, ""},
		{"all kinds", Plan{Mounts: []Mount{
			{Kind: Bind, Source: "/usr", Target: "/usr"},
			{Kind: Tmpfs, Target: "/tmp", Size: 1, Mode: fs.ModeSticky | 0o777},
			{Kind: Proc, Target: "/proc"},
			{Kind: Devpts, Target: "/dev/pts"},
			{Kind: Dir, Target: "/etc", Mode: 0o755},
			{Kind: File, Target: "/etc/passwd", Data: []byte("x")},
			{Kind: Symlink, Source: "usr/bin", Target: "/bin"},
			{Kind: Mask, Target: "/proc/kcore"},
			{Kind: ReadOnly, Target: "/proc/sys"},
		}}, ""},
		{"relative root", Plan{Root: Root{Dir: "x"}}, "Root.Dir"},
		{"overlay", Plan{Root: Root{Overlay: &Overlay{Lower: []string{"/a", "/b"}, Upper: "/u"}}}, ""},
		{"overlay and a directory", Plan{Root: Root{Dir: "/a", Overlay: &Overlay{Lower: []string{"/a"}}}}, "Root.Overlay"},
		{"overlay without layers", Plan{Root: Root{Overlay: &Overlay{}}}, "Root.Overlay.Lower"},
		{"relative layer", Plan{Root: Root{Overlay: &Overlay{Lower: []string{"/a", "b"}}}}, "Root.Overlay.Lower[1]"},
		{"unclean upper", Plan{Root: Root{Overlay: &Overlay{Lower: []string{"/a"}, Upper: "/u/"}}}, "Root.Overlay.Upper"},
		{"upper size with upper", Plan{Root: Root{Overlay: &Overlay{Lower: []string{"/a"}, Upper: "/u", UpperSize: 1}}}, "Root.Overlay.UpperSize"},
		{"negative upper size", Plan{Root: Root{Overlay: &Overlay{Lower: []string{"/a"}, UpperSize: -1}}}, "Root.Overlay.UpperSize"},
		{"too few descriptors", Plan{Root: Root{Overlay: &Overlay{Lower: []string{"/a"}, FDs: []int{3}}}}, "Root.Overlay.FDs"},
		{"negative root size", Plan{Root: Root{Size: -1}}, "Root.Size"},
		{"no kind", Plan{Mounts: []Mount{{Target: "/x"}}}, "Mounts[0].Kind"},
		{"unknown kind", Plan{Mounts: []Mount{{Kind: "nfs", Target: "/x"}}}, "Mounts[0].Kind"},
		{"no target", Plan{Mounts: []Mount{{Kind: Proc}}}, "Mounts[0].Target"},
		{"nul target", Plan{Mounts: []Mount{{Kind: Proc, Target: "/a\x00"}}}, "Mounts[0].Target"},
		{"symlink without text", Plan{Mounts: []Mount{{Kind: Symlink, Target: "/x"}}}, "Mounts[0].Source"},
		{"proc with source", Plan{Mounts: []Mount{{Kind: Proc, Source: "/x", Target: "/x"}}}, "Mounts[0].Source"},
		{"NUL in a bind source", Plan{Mounts: []Mount{{Kind: Bind, Source: "/a", Target: "/a"}, {Kind: Bind, Source: "/x\x00y", Target: "/x"}}}, "Mounts[1].Source"},
		{"NUL in a link", Plan{Mounts: []Mount{{Kind: Symlink, Source: "a\x00", Target: "/x"}}}, "Mounts[0].Source"},
		{"NUL in the root", Plan{Root: Root{Dir: "/srv/\x00"}}, "Root.Dir"},
		{"too many inodes", Plan{Mounts: []Mount{{Kind: Tmpfs, Target: "/x", Size: 1, Inodes: 1 << 62}}}, "Mounts[0].Inodes"},
		{"uid past the last", Plan{Mounts: []Mount{{Kind: Dir, Target: "/x", UID: 1<<32 - 1}}}, "Mounts[0].UID"},
		{"gid past the last", Plan{Mounts: []Mount{{Kind: Dir, Target: "/x", GID: 1 << 40}}}, "Mounts[0].GID"},
		{"mode type bits", Plan{Mounts: []Mount{{Kind: Dir, Target: "/x", Mode: fs.ModeDir | 0o755}}}, "Mounts[0].Mode"},
		{"numeric sticky bit", Plan{Mounts: []Mount{{Kind: Dir, Target: "/x", Mode: 0o1777}}}, "Mounts[0].Mode"},
		{"negative uid", Plan{Mounts: []Mount{{Kind: Dir, Target: "/x", UID: -1}}}, "Mounts[0].UID"},
		{"negative inodes", Plan{Mounts: []Mount{{Kind: Tmpfs, Target: "/x", Size: 1, Inodes: -1}}}, "Mounts[0].Inodes"},
		{"size on proc", Plan{Mounts: []Mount{{Kind: Proc, Target: "/x", Size: 1}}}, "Mounts[0].Size"},
		{"inodes on proc", Plan{Mounts: []Mount{{Kind: Proc, Target: "/x", Inodes: 1}}}, "Mounts[0].Inodes"},
		{"too many ptys", Plan{Mounts: []Mount{{Kind: Devpts, Target: "/x", Inodes: MaxPtys + 1}}}, "Mounts[0].Inodes"},
		{"ptys of a devpts", Plan{Mounts: []Mount{{Kind: Devpts, Target: "/x", Inodes: 8}}}, ""},
		{"propagations", Plan{Root: Root{Propagation: Shared}, Mounts: []Mount{
			{Kind: Bind, Source: "/usr", Target: "/usr", Propagation: Unbindable},
			{Kind: Tmpfs, Target: "/tmp", Size: 1, Propagation: Shared},
			{Kind: Tmpfs, Target: "/t", Size: 1, Propagation: "private"},
		}}, ""},
		{"slave root", Plan{Root: Root{Propagation: "slave"}}, "Root.Propagation"},
		{"recursive propagation", Plan{Mounts: []Mount{{Kind: Bind, Source: "/a", Target: "/a", Propagation: "rshared"}}}, "Mounts[0].Propagation"},
		{"propagation of proc", Plan{Mounts: []Mount{{Kind: Proc, Target: "/proc", Propagation: Shared}}}, "Mounts[0].Propagation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var fe *ConfigError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field, err.Error())
		})
	}
}

func TestUnixMode(t *testing.T) {
	assert.Equal(t, uint32(0o640), unixMode(0o640))
	assert.Equal(t, uint32(0o1777), unixMode(fs.ModeSticky|0o777))
	assert.Equal(t, uint32(0o2755), unixMode(fs.ModeSetgid|0o755))
}

func TestHostSystem(t *testing.T) {
	ms := HostSystem()
	require.NotEmpty(t, ms)
	for _, m := range ms {
		assert.NoError(t, m.Validate(), m.Target)
		assert.Contains(t, []Kind{Bind, Symlink}, m.Kind)
		assert.False(t, m.Writable, "the system view is read-only")
	}
	ms[0].Target = "/changed"
	assert.NotEqual(t, "/changed", HostSystem()[0].Target, "HostSystem must return a copy")
}
