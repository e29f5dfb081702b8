//go:build linux

package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/tartree"
)

// SaveOptions describe the image Save makes.
type SaveOptions struct {
	// Name is the new image's name in the store. Required.
	Name string
	// UID and GID, for a caller that is not host root, are the ids that
	// the caller's own files in the upper layer get in the new layer: the
	// sandbox's user (Config.UID and GID; 0 for RunAsRoot), whom the
	// caller's ids stood for. Host root's upper layer holds the image's
	// own ids, which are kept.
	UID, GID int
	// CreatedBy is the history entry of the new layer. Empty means
	// "stockade save".
	CreatedBy string
}

// Save turns a sandbox's upper layer (Sandbox.Upper, a directory in
// overlayfs format) into a new layer on top of base and stores the result
// as a new image named opt.Name, unpacked and ready to run. Whiteouts and
// opaque directories go back to their OCI form. A nil base makes an image
// of the upper layer alone. The upper layer should not change while it is
// saved: save a sandbox that has ended, or one that is idle.
func (s *Store) Save(ctx context.Context, base *Image, upper string, opt SaveOptions) (*Image, error) {
	if opt.Name == "" {
		return nil, errors.New("image: save: SaveOptions.Name is required")
	}
	if strings.HasPrefix(opt.Name, "sha256:") {
		return nil, fmt.Errorf("image: save: SaveOptions.Name %q looks like a digest", opt.Name)
	}
	if opt.CreatedBy == "" {
		opt.CreatedBy = "stockade save"
	}
	img, err := s.save(ctx, base, upper, opt)
	if err != nil {
		return nil, fmt.Errorf("image: save %s: %w", upper, err)
	}
	if _, err := s.Unpack(ctx, img, nil); err != nil {
		return nil, err
	}
	return img, nil
}

func (s *Store) save(ctx context.Context, base *Image, upper string, opt SaveOptions) (*Image, error) {
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	layer, err := s.writeLayer(ctx, upper, opt)
	if err != nil {
		return nil, err
	}
	var cfg *v1.ConfigFile
	var m *v1.Manifest
	if base != nil {
		cur, err := s.load(base.Digest, base.Name) // as it is in this store
		if err != nil {
			return nil, err
		}
		raw, err := s.readBlob(cur.Digest)
		if err != nil {
			return nil, err
		}
		if m, err = v1.ParseManifest(strings.NewReader(string(raw))); err != nil {
			return nil, err
		}
		cfg = cur.Config.DeepCopy()
	} else {
		cfg = &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH}
		m = &v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	}
	now := time.Now().UTC()
	cfg.Created = v1.Time{Time: now}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, layer.DiffID)
	cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: now}, CreatedBy: opt.CreatedBy})
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgHash, _, err := v1.SHA256(strings.NewReader(string(rawCfg)))
	if err != nil {
		return nil, err
	}
	if err := s.writeBlob(strings.NewReader(string(rawCfg)), cfgHash); err != nil {
		return nil, err
	}
	m.MediaType = types.OCIManifestSchema1
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: cfgHash}
	m.Layers = append(append([]v1.Descriptor{}, m.Layers...), v1.Descriptor{MediaType: types.MediaType(layer.MediaType), Size: layer.Size, Digest: layer.Digest})
	for i := range m.Layers {
		// A docker manifest's layer types are not OCI's.
		switch m.Layers[i].MediaType {
		case types.DockerLayer:
			m.Layers[i].MediaType = types.OCILayer
		case types.DockerUncompressedLayer:
			m.Layers[i].MediaType = types.OCIUncompressedLayer
		}
	}
	desc, _, err := s.writeManifest(m, "")
	if err != nil {
		return nil, err
	}
	if err := s.tag(desc, opt.Name); err != nil {
		return nil, err
	}
	return s.load(desc.Digest, opt.Name)
}

// writeLayer writes the upper directory as a gzip'd OCI layer blob,
// computing its diff id and digest in the same pass.
func (s *Store) writeLayer(ctx context.Context, upper string, opt SaveOptions) (Layer, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "save-")
	if err != nil {
		return Layer{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	blobSum, diffSum := sha256.New(), sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, blobSum), gzip.BestSpeed)
	if err != nil {
		return Layer{}, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffSum))
	w := &layerWriter{ctx: ctx, tw: tw, links: map[[2]uint64]string{}, rootless: os.Geteuid() != 0, opt: opt, caller: [2]uint32{uint32(os.Getuid()), uint32(os.Getgid())}}
	// The path itself is followed: Sandbox.Upper of an upper layer on
	// tmpfs is a /proc/self/fd link. Nothing under it is.
	root, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Layer{}, &os.PathError{Op: "open", Path: upper, Err: err}
	}
	err = w.dir(root, "")
	unix.Close(root)
	if err != nil {
		return Layer{}, err
	}
	if err := tw.Close(); err != nil {
		return Layer{}, err
	}
	if err := zw.Close(); err != nil {
		return Layer{}, err
	}
	if err := f.Sync(); err != nil {
		return Layer{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return Layer{}, err
	}
	l := Layer{
		Digest:    v1.Hash{Algorithm: "sha256", Hex: sumHex(blobSum)},
		DiffID:    v1.Hash{Algorithm: "sha256", Hex: sumHex(diffSum)},
		MediaType: string(types.OCILayer),
		Size:      fi.Size(),
	}
	if err := os.Rename(f.Name(), s.blobPath(l.Digest)); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// layerWriter walks an overlayfs upper directory by descriptors, never
// following a link, and writes it as an OCI layer.
type layerWriter struct {
	ctx      context.Context
	tw       *tar.Writer
	links    map[[2]uint64]string // (dev, inode) of files with several links → first name
	rootless bool
	caller   [2]uint32
	opt      SaveOptions
}

// ids maps on-disk ids to the layer's: host root keeps them; an ordinary
// user's own ids stand for the sandbox's user.
func (w *layerWriter) ids(st *unix.Stat_t) (int, int) {
	uid, gid := int(st.Uid), int(st.Gid)
	if w.rootless {
		if st.Uid == w.caller[0] {
			uid = w.opt.UID
		}
		if st.Gid == w.caller[1] {
			gid = w.opt.GID
		}
	}
	return uid, gid
}

func (w *layerWriter) header(name string, st *unix.Stat_t) *tar.Header {
	uid, gid := w.ids(st)
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     uid,
		Gid:     gid,
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
}

func (w *layerWriter) dir(fd int, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	d := os.NewFile(uintptr(dupFD(fd)), rel)
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read %q: %w", rel, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := w.entry(fd, rel, n); err != nil {
			return err
		}
	}
	return nil
}

func dupFD(fd int) int {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return nfd
}

func (w *layerWriter) entry(pfd int, rel, n string) error {
	name := path.Join(rel, n)
	if strings.HasPrefix(n, whiteoutPrefix) {
		return fmt.Errorf("%q: a file named like an OCI whiteout cannot be saved", name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	hdr := w.header(name, &st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev != 0 {
			return nil // a device the sandbox could not have made: left out
		}
		hdr = &tar.Header{Name: path.Join(rel, whiteoutPrefix+n), Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX}
		return w.tw.WriteHeader(hdr)
	case unix.S_IFDIR:
		fd, err := unix.Openat(pfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		w.xattrs(fd, hdr)
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if isOpaqueFD(fd) {
			if err := w.tw.WriteHeader(&tar.Header{Name: path.Join(name, opaqueMarker), Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		return w.dir(fd, name)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		k, err := unix.Readlinkat(pfd, n, buf)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:k])
		return w.tw.WriteHeader(hdr)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return w.tw.WriteHeader(hdr)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := w.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return w.tw.WriteHeader(hdr)
			}
			w.links[key] = name
		}
		fd, err := unix.Openat(pfd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		var st2 unix.Stat_t
		if err := unix.Fstat(fd, &st2); err != nil || st2.Ino != st.Ino || st2.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%q changed while it was saved", name)
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st2.Size
		w.xattrs(fd, hdr)
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(w.tw, f, st2.Size); err != nil {
			return fmt.Errorf("%q changed while it was saved: %w", name, err)
		}
		return nil
	}
	return nil // sockets and other devices are left out
}

// xattrs copies the user.* attributes, except overlayfs's own.
func (w *layerWriter) xattrs(fd int, hdr *tar.Header) {
	buf := make([]byte, 4096)
	n, err := unix.Flistxattr(fd, buf)
	if err != nil || n <= 0 {
		return
	}
	for _, a := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if !strings.HasPrefix(a, "user.") || strings.HasPrefix(a, "user.overlay.") {
			continue
		}
		v := make([]byte, 65536)
		k, err := unix.Fgetxattr(fd, a, v)
		if err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+a] = string(v[:k])
	}
}

func isOpaqueFD(fd int) bool {
	buf := make([]byte, 1)
	for _, a := range []string{overlayOpaqueXattr, "trusted.overlay.opaque"} {
		if n, err := unix.Fgetxattr(fd, a, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// Export writes the image named ref (a name or digest in the store) to dst:
// an OCI archive when dst ends in ".tar", else an OCI image layout directory
// (made when missing, added to when it is one). The image is named name in
// it (empty: its name in the store).
func (s *Store) Export(ctx context.Context, ref, dst, name string) error {
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := s.get(ref)
	if err != nil {
		return err
	}
	if name == "" {
		name = img.Name
	}
	v1img, err := s.path().Image(img.Digest)
	if err != nil {
		return fmt.Errorf("image: export %s: %w", ref, err)
	}
	dir := dst
	archive := strings.HasSuffix(dst, ".tar")
	if archive {
		if dir, err = os.MkdirTemp(filepath.Join(s.dir, "tmp"), "export-"); err != nil {
			return err
		}
		defer removeAll(dir)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		if lp, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("image: export to %s: %w", dst, err)
		}
	}
	var opts []layout.Option
	if name != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: name}))
	}
	if err := lp.AppendImage(v1img, opts...); err != nil {
		return fmt.Errorf("image: export to %s: %w", dst, err)
	}
	if archive {
		if err := tarDir(dir, dst); err != nil {
			return fmt.Errorf("image: export to %s: %w", dst, err)
		}
	}
	return nil
}

// tarDir writes the plain files of an OCI layout directory as a tar.
func tarDir(dir, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	err = tartree.Write(tw, dir)
	if err == nil {
		err = tw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
