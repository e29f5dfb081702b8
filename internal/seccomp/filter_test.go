//go:build linux

package seccomp

import (
	"reflect"
	"strings"
	"testing"
)

func TestMarshalRoundTrip(t *testing.T) {
	f, err := DefaultFilter()
	if err != nil {
		t.Fatal(err)
	}
	data, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := binHeader + binInsn*f.Len(); len(data) != want {
		t.Errorf("encoded %d bytes, want %d", len(data), want)
	}
	var g Filter
	if err := g.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if g.auditArch != f.auditArch || !reflect.DeepEqual(g.prog, f.prog) {
		t.Fatal("the decoded filter differs")
	}
	if g.fprog.Len != uint16(len(g.prog)) || g.fprog.Filter != &g.prog[0] {
		t.Fatal("the decoded filter's sock_fprog does not point at its program")
	}
}

func TestUnmarshalErrors(t *testing.T) {
	f, err := DefaultFilter()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := f.MarshalBinary()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an encoded filter"},
		{"bad magic", append([]byte("XF"), good[2:]...), "not an encoded filter"},
		{"other version", append([]byte{'S', 'F', 9}, good[3:]...), "format version 9"},
		{"no instructions", good[:binHeader], "0 bytes of instructions"},
		{"truncated", good[:len(good)-3], "bytes of instructions"},
		{"too long", append(good[:binHeader:binHeader], make([]byte, binInsn*(maxInstructions+1))...), "at most 4096"},
	} {
		var g Filter
		if err := g.UnmarshalBinary(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	var empty Filter
	if _, err := empty.MarshalBinary(); err == nil {
		t.Error("marshalled an empty filter")
	}
}
