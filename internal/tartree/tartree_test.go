//go:build linux

package tartree

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWrite writes a tree of a directory, a file and a symbolic link and
// reads back each entry's name, type, target, body and owner.
func TestWrite(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "d"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(root, "d", "f"), []byte("body"), 0o640))
	require.NoError(t, os.Symlink("d/f", filepath.Join(root, "l")))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, Write(tw, root))
	require.NoError(t, tw.Close())

	type entry struct {
		name      string
		typ       byte
		mode      int64
		link      string
		body      string
		uid, gid  int
		user, grp string
	}
	var got []entry
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		got = append(got, entry{hdr.Name, hdr.Typeflag, hdr.Mode & 0o777, hdr.Linkname, string(body), hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname})
	}
	assert.Equal(t, []entry{
		{name: "d", typ: tar.TypeDir, mode: 0o750},
		{name: "d/f", typ: tar.TypeReg, mode: 0o640, body: "body"},
		{name: "l", typ: tar.TypeSymlink, mode: 0o777, link: "d/f"},
	}, got)
}
