//go:build linux

package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack applies arbitrary tar streams to a layer directory beside a
// sentinel file: whatever the stream holds, nothing is created, changed or
// removed outside the layer directory.
func FuzzUnpack(f *testing.F) {
	f.Add(tarOf(f, symlink("a", "/"), file("a/escaped", "x")))
	f.Add(tarOf(f, symlink("a", "../.."), file("a/escaped", "x"), hardlink("b", "../sentinel")))
	f.Add(tarOf(f, file("../escaped", "x"), file(".wh...", ""), file("d/.wh..wh..opq", "")))
	f.Add(tarOf(f, dir("d"), symlink("d/up", "../../.."), file("d/up/escaped", "x"), file("d/up/.wh.sentinel", "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		sentinel := filepath.Join(parent, "sentinel")
		if err := os.WriteFile(sentinel, []byte("s"), 0o644); err != nil {
			t.Fatal(err)
		}
		layer := filepath.Join(parent, "layer")
		if err := os.Mkdir(layer, 0o700); err != nil {
			t.Fatal(err)
		}
		u, err := newUnpacker(layer, true)
		if err != nil {
			t.Fatal(err)
		}
		_ = u.apply(bytes.NewReader(data)) // errors are fine; escapes are not
		u.close()
		es, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Fatalf("the parent holds %d entries, want layer and sentinel", len(es))
		}
		b, err := os.ReadFile(sentinel)
		if err != nil || string(b) != "s" {
			t.Fatalf("the sentinel changed: %q %v", b, err)
		}
		removeAll(layer)
	})
}
