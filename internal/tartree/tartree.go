// Package tartree writes a directory tree to a tar stream as the layer of
// an image holds one: entries owned by root, without user or group names.
package tartree

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes the tree under root (root itself left out) to tw, in
// lexical order: directories, regular files, symbolic links and whatever
// else tar.FileInfoHeader describes, each owned by uid and gid 0 with no
// names. It does not close tw.
func Write(tw *tar.Writer, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = filepath.ToSlash(rel), 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}
