//go:build linux

package landlock

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestForABI(t *testing.T) {
	full := Ruleset{
		HandledFS:  AllFS,
		HandledNet: BindTCP | ConnectTCP,
		Scoped:     ScopeAbstractUnix | ScopeSignal,
		Paths: []PathRule{
			{Path: "/", Access: Read},
			{Path: "/tmp", Access: Read | Write},
			{Path: "/dev/null", Access: ReadFile | WriteFile | IoctlDev},
		},
		Ports: []PortRule{{Port: 8080, Access: BindTCP}},
	}
	abi1FS := uint64(Read | WriteFile | RemoveDir | RemoveFile | MakeChar | MakeDir | MakeReg | MakeSock | MakeFifo | MakeBlock | MakeSym)
	for _, tc := range []struct {
		name  string
		abi   int
		in    Ruleset
		want  Ruleset
		notes int
		ok    bool
	}{
		{"none", 0, full, Ruleset{}, 1, false},
		{"abi 7 keeps everything", 7, full, full, 0, true},
		{"abi 6 keeps everything", 6, full, full, 0, true},
		{"abi 5 drops scopes", 5, full, Ruleset{
			HandledFS: AllFS, HandledNet: full.HandledNet, Paths: full.Paths, Ports: full.Ports,
		}, 1, true},
		{"abi 4 drops ioctl and scopes", 4, full, Ruleset{
			HandledFS: AllFS &^ IoctlDev, HandledNet: full.HandledNet,
			Paths: []PathRule{{"/", Read}, {"/tmp", Read | Write}, {"/dev/null", ReadFile | WriteFile}},
			Ports: full.Ports,
		}, 2, true},
		{"abi 3 drops tcp too", 3, full, Ruleset{
			HandledFS: AllFS &^ IoctlDev,
			Paths:     []PathRule{{"/", Read}, {"/tmp", Read | Write}, {"/dev/null", ReadFile | WriteFile}},
		}, 3, true},
		{"abi 2 drops truncate", 2, full, Ruleset{
			HandledFS: abi1FS | Refer,
			Paths:     []PathRule{{"/", Read}, {"/tmp", Read | Write&^Truncate}, {"/dev/null", ReadFile | WriteFile}},
		}, 3, true},
		{"abi 1 cannot allow refer: no file system rules", 1, full, Ruleset{}, 4, false},
		{"abi 1 read-only rules apply", 1, Ruleset{HandledFS: Read | WriteFile, Paths: []PathRule{{"/", Read}}},
			Ruleset{HandledFS: Read | WriteFile, Paths: []PathRule{{"/", Read}}}, 0, true},
		{"a rule left with no right is dropped", 2, Ruleset{HandledFS: AllFS, Paths: []PathRule{{"/dev/tty", IoctlDev}, {"/", Read}}},
			Ruleset{HandledFS: abi1FS | Refer, Paths: []PathRule{{"/", Read}}}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, notes, ok := tc.in.ForABI(tc.abi)
			assert.Equal(t, tc.want, got)
			assert.Len(t, notes, tc.notes, "%q", notes)
			assert.Equal(t, tc.ok, ok)
		})
	}
}

func TestFileRightsAreKnownToABI5(t *testing.T) {
	assert.Zero(t, uint64(FileRights)&^fsRights(5))
	assert.Equal(t, uint64(AllFS), fsRights(5))
}
