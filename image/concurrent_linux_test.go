//go:build linux

package image

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The helper process of TestConcurrentUnpack: it unpacks an image of the
// store in helperEnv and prints, per layer, whether it unpacked it or found
// it unpacked.
const (
	helperEnv    = "STOCKADE_IMAGE_UNPACK_HELPER"
	helperRefEnv = "STOCKADE_IMAGE_UNPACK_REF"
)

func unpackHelper(dir, ref string) int {
	s, err := Open(dir)
	if err == nil {
		var img *Image
		if img, err = s.Get(ctx, ref); err == nil {
			var dirs []string
			dirs, err = unpackCounting(s, img, func(l int) { fmt.Printf("unpacked %d\n", l) })
			fmt.Printf("dirs %s\n", strings.Join(dirs, " "))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// unpackCounting unpacks img and calls unpacked for each layer it had to
// unpack itself.
func unpackCounting(s *Store, img *Image, unpacked func(int)) ([]string, error) {
	var mu sync.Mutex
	seen := map[int]bool{}
	dirs, err := s.Unpack(ctx, img, func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if !p.Cached && !seen[p.Layer] {
			seen[p.Layer] = true
			unpacked(p.Layer)
		}
	})
	return dirs, err
}

// TestConcurrentUnpack unpacks the same image from several goroutines and
// several processes at once: each layer is unpacked exactly once, all get
// the same directories, and no temporary directory is left.
func TestConcurrentUnpack(t *testing.T) {
	big := make([]byte, 32<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	src := t.TempDir()
	writeLayout(t, src, map[string]v1.Image{"big": imageOf(t, v1.Config{},
		tarOf(t, file("a", "a")), tarOf(t, file("big", string(big))), tarOf(t, file("c", "c")))})
	s := openStore(t)
	img, err := s.Import(ctx, src, ImportOptions{NoUnpack: true})
	require.NoError(t, err)

	const goroutines, procs = 4, 3
	var mu sync.Mutex
	counts := map[int]int{}
	results := map[string]bool{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			dirs, err := unpackCounting(s, img, func(l int) { mu.Lock(); counts[l]++; mu.Unlock() })
			assert.NoError(t, err)
			mu.Lock()
			results[strings.Join(dirs, " ")] = true
			mu.Unlock()
		})
	}
	for range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+s.Dir(), helperRefEnv+"=big")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			assert.NoError(t, err, "%s", stderr.String())
			mu.Lock()
			defer mu.Unlock()
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var l int
				if _, err := fmt.Sscanf(line, "unpacked %d", &l); err == nil {
					counts[l]++
				} else if d, ok := strings.CutPrefix(line, "dirs "); ok {
					results[d] = true
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{0: 1, 1: 1, 2: 1}, counts, "each layer is unpacked once")
	assert.Len(t, results, 1, "all see the same layer directories")
	assert.Empty(t, names(t, s.Dir()+"/tmp"))
	b, err := os.ReadFile(s.LayerDir(img.Layers[1].DiffID) + "/big")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, b))
}
