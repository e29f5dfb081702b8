//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/imagetest"
)

func stockadeImage(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(append([]string{"image"}, args...), stdio{strings.NewReader(""), &out, &errb})
	return status, out.String(), errb.String()
}

func TestImageCommands(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	imgs := map[string]v1.Image{}
	for _, n := range []string{"one", "two"} {
		layer, err := imagetest.TarFiles(map[string]string{"name": n})
		require.NoError(t, err)
		imgs[n], err = imagetest.Image(v1.Config{}, layer)
		require.NoError(t, err)
	}
	_, err := imagetest.WriteLayout(src, imgs)
	require.NoError(t, err)
	store := filepath.Join(dir, "store")

	status, out, errs := stockadeImage(t, "--store", store, "--progress", "import", src+":two")
	require.Equal(t, 0, status, "%s%s", out, errs)
	assert.Contains(t, out, "two sha256:")
	assert.Contains(t, errs, "layer 1/1 sha256:", "--progress shows the unpacking")

	status, out, errs = stockadeImage(t, "--store", store, "import", "--name", "first", src+":one")
	require.Equal(t, 0, status, "%s%s", out, errs)
	assert.Empty(t, errs, "no progress off a terminal")

	status, out, _ = stockadeImage(t, "--store", store, "ls")
	require.Equal(t, 0, status)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.True(t, strings.HasPrefix(lines[1], "first "), out)
	assert.True(t, strings.HasPrefix(lines[2], "two "), out)

	status, _, errs = stockadeImage(t, "--store", store, "import", src)
	assert.Equal(t, 1, status)
	assert.Contains(t, errs, "holds 2 images")

	status, _, errs = stockadeImage(t, "--store", store, "export", "two", filepath.Join(dir, "two.tar"))
	require.Equal(t, 0, status, errs)
	status, out, errs = stockadeImage(t, "--store", filepath.Join(dir, "store2"), "import", filepath.Join(dir, "two.tar"))
	require.Equal(t, 0, status, errs)
	assert.Contains(t, out, "two sha256:")

	status, _, errs = stockadeImage(t, "--store", store, "rm", "first", "two")
	require.Equal(t, 0, status, errs)
	status, out, _ = stockadeImage(t, "--store", store, "ls")
	require.Equal(t, 0, status)
	assert.Equal(t, 1, strings.Count(out, "\n"), out)
	layers, err := os.ReadDir(filepath.Join(store, "layers", "sha256"))
	require.NoError(t, err)
	assert.Empty(t, layers)

	status, _, errs = stockadeImage(t, "--store", store, "frob")
	assert.Equal(t, exitUsage, status)
	assert.Contains(t, errs, "unknown image command")
}

func TestSplitSource(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.tar")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	for in, want := range map[string][2]string{
		f:                    {f, ""},
		f + ":alpine:3.19":   {f, "alpine:3.19"},
		f + "@sha256:abcd":   {f, "sha256:abcd"},
		dir + "/missing:tag": {dir + "/missing:tag", ""},
		dir + ":latest":      {dir, "latest"},
	} {
		p, ref := splitSource(in)
		assert.Equal(t, want, [2]string{p, ref}, in)
	}
}
