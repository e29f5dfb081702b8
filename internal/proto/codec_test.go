//go:build linux

package proto

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/mount"
)

// fill sets every field reachable from v to a random non-zero value, so
// that a field the codec forgets cannot survive the round trip.
func fill(r *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(r, v.Field(i))
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem())
		v.Set(p)
	case reflect.Slice:
		n := 1 + r.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			fill(r, s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		v.SetString(string(b))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(r.Int64N(1<<40) - 1<<39 + 1)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint8:
		v.SetUint(1 + r.Uint64N(1<<31))
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func TestCodecCoversEveryField(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		for _, m := range []Message{&Spec{}, &Request{}, &Report{}} {
			fill(r, reflect.ValueOf(m).Elem())
			b, err := m.MarshalBinary()
			require.NoError(t, err)
			got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			require.NoError(t, got.UnmarshalBinary(b))
			assert.Equal(t, m, got)
			// Every strict prefix is malformed, never a panic or a quiet
			// partial message.
			for i := 0; i < len(b); i += 1 + len(b)/20 {
				assert.Error(t, got.UnmarshalBinary(b[:i]), "prefix of %d bytes", i)
			}
		}
	}
}

func TestCodecEmpty(t *testing.T) {
	for _, m := range []Message{&Spec{}, &Request{}, &Report{}} {
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
		require.NoError(t, got.UnmarshalBinary(b))
		assert.Equal(t, m, got)
	}
}

func FuzzSpec(f *testing.F) {
	s := &Spec{Plan: mount.Plan{Mounts: []mount.Mount{{Kind: mount.Bind, Source: "/usr", Target: "/usr"}}}, Args: []string{"true"}}
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Spec
		if s.UnmarshalBinary(b) != nil {
			return
		}
		again, err := s.MarshalBinary()
		require.NoError(t, err)
		var s2 Spec
		require.NoError(t, s2.UnmarshalBinary(again))
		assert.Equal(t, s, s2)
	})
}

func BenchmarkDecodeSpec(b *testing.B) {
	s := &Spec{Args: []string{"/bin/true"}, Env: []string{"PATH=/bin"}}
	for range 40 {
		s.Plan.Mounts = append(s.Plan.Mounts, mount.Mount{Kind: mount.Bind, Source: "/usr/lib", Target: "/usr/lib", FD: 7})
	}
	s.Seccomp = make([]byte, 1300)
	data, _ := s.MarshalBinary()
	b.ReportMetric(float64(len(data)), "bytes")
	for b.Loop() {
		var got Spec
		if err := got.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}
