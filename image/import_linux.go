//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// containerdNameAnnotation is where docker save (since 25) and containerd
// keep an image's full name in an OCI layout.
const containerdNameAnnotation = "io.containerd.image.name"

// ImportOptions selects the image of a source and names it in the store.
type ImportOptions struct {
	// Ref selects the image: a name or tag the source gives it
	// ("alpine:3.19", or "3.19" in an OCI layout), or a digest: in an OCI
	// layout its manifest's (or its index's), in a docker save tar its
	// configuration's, the image id docker shows. Empty takes the source's
	// only image.
	Ref string
	// Name is the image's name in the store. Empty means Ref when that is
	// no digest, else the name the source gives the image, else the
	// source's file name.
	Name string
	// Progress, when not nil, is called as the layers are unpacked.
	Progress func(Progress)
	// NoUnpack copies the image into the store without unpacking its
	// layers (Unpack does it later).
	NoUnpack bool
}

// Import copies an image into the store and unpacks its layers. src is an
// OCI image layout directory, an OCI archive (that layout in a tar), or a
// docker save tar. An image for several platforms gives the one of this
// host. Every blob is checked against its digest as it is copied, every
// layer against its diff id as it is unpacked.
func (s *Store) Import(ctx context.Context, src string, opt ImportOptions) (*Image, error) {
	img, err := s.importImage(ctx, src, opt)
	if err != nil {
		return nil, err
	}
	if !opt.NoUnpack {
		if _, err := s.Unpack(ctx, img, opt.Progress); err != nil {
			return nil, err
		}
	}
	return img, nil
}

func (s *Store) importImage(ctx context.Context, src string, opt ImportOptions) (*Image, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("image: import: %w", err)
	}
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var desc v1.Descriptor
	var srcName string
	switch {
	case fi.IsDir():
		desc, srcName, err = s.importLayout(src, opt.Ref)
	default:
		var kind string
		kind, err = archiveKind(src)
		if err != nil {
			break
		}
		if kind == "docker" {
			desc, srcName, err = s.importDocker(src, opt.Ref)
			break
		}
		var dir string
		if dir, err = s.extractArchive(src); err == nil {
			desc, srcName, err = s.importLayout(dir, opt.Ref)
			removeAll(dir)
		}
	}
	if err != nil {
		// The blobs copied so far belong to no image: nothing is left.
		return nil, errors.Join(fmt.Errorf("image: import %s: %w", src, err), s.collect())
	}
	imgName := opt.Name
	switch {
	case imgName != "":
	case opt.Ref != "" && !strings.HasPrefix(opt.Ref, "sha256:"):
		imgName = opt.Ref
	case srcName != "":
		imgName = srcName
	default:
		imgName = strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	}
	img, err := s.load(desc.Digest, imgName)
	if err != nil {
		return nil, err
	}
	if err := checkPlatform(img.Config); err != nil {
		return nil, fmt.Errorf("image: import %s: %w", src, err)
	}
	if err := s.tag(desc, imgName); err != nil {
		return nil, err
	}
	return img, nil
}

func checkPlatform(cfg *v1.ConfigFile) error {
	if (cfg.OS != "" && cfg.OS != "linux") || (cfg.Architecture != "" && cfg.Architecture != runtime.GOARCH) {
		return fmt.Errorf("the image is for %s/%s, this host is linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	return nil
}

// archiveKind tells a docker save tar (a manifest.json) from an OCI archive
// (an oci-layout file). A docker save of Docker 25 and later holds both and
// is read as docker's, whose names are the familiar ones.
func archiveKind(src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("not an OCI archive or docker save tar: %w", err)
		}
		switch clean(hdr.Name) {
		case "manifest.json":
			return "docker", nil
		case "oci-layout":
			oci = true
		}
	}
	if !oci {
		return "", errors.New("not an OCI archive or docker save tar: it has neither oci-layout nor manifest.json")
	}
	return "oci", nil
}

// extractArchive unpacks an OCI archive's layout into a temporary directory
// of the store: only its oci-layout, index.json and blobs/ALG/HEX files,
// each a plain file written under a name checked here.
func (s *Store) extractArchive(src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "archive-")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			removeAll(dir)
		}
	}()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		name := clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		parts := strings.Split(name, "/")
		switch {
		case name == "oci-layout" || name == "index.json":
		case len(parts) == 3 && parts[0] == "blobs" && parts[1] == "sha256" && checkHash(v1.Hash{Algorithm: "sha256", Hex: parts[2]}) == nil:
			if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
				return "", err
			}
		default:
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
	}
	ok = true
	return dir, nil
}

// importLayout copies the selected image of an OCI layout with its own
// manifest, configuration and layer blobs, so its digest stays the same.
func (s *Store) importLayout(dir, ref string) (v1.Descriptor, string, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	idx, err := ii.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	desc, err := selectDescriptor(idx.Manifests, ref)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	srcName := desc.Annotations[containerdNameAnnotation]
	if srcName == "" {
		srcName = desc.Annotations[RefNameAnnotation]
	}
	desc, err = platformImage(lp, desc)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	rawManifest, err := readSourceBlob(lp, desc.Digest)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	for _, l := range m.Layers {
		if err := s.copyBlob(lp, l.Digest); err != nil {
			return v1.Descriptor{}, "", err
		}
	}
	if err := s.copyBlob(lp, m.Config.Digest); err != nil {
		return v1.Descriptor{}, "", err
	}
	if err := s.writeBlob(bytes.NewReader(rawManifest), desc.Digest); err != nil {
		return v1.Descriptor{}, "", err
	}
	return v1.Descriptor{MediaType: m.MediaType, Size: int64(len(rawManifest)), Digest: desc.Digest}, srcName, nil
}

func (s *Store) copyBlob(lp layout.Path, h v1.Hash) error {
	rc, err := lp.Blob(h)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.writeBlob(rc, h)
}

// selectDescriptor picks the descriptor of the index that ref names.
func selectDescriptor(ds []v1.Descriptor, ref string) (v1.Descriptor, error) {
	var names []string
	for _, d := range ds {
		n := d.Annotations[containerdNameAnnotation]
		if n == "" {
			n = d.Annotations[RefNameAnnotation]
		}
		names = append(names, n)
		if ref == "" {
			continue
		}
		if strings.HasPrefix(ref, "sha256:") {
			if d.Digest.String() == ref {
				return d, nil
			}
			continue
		}
		for _, n := range []string{d.Annotations[RefNameAnnotation], d.Annotations[containerdNameAnnotation]} {
			if n != "" && (n == ref || sameTag(n, ref)) {
				return d, nil
			}
		}
	}
	if ref == "" && len(ds) == 1 {
		return ds[0], nil
	}
	if ref == "" {
		return v1.Descriptor{}, fmt.Errorf("the source holds %d images (%s): name one", len(ds), strings.Join(names, ", "))
	}
	return v1.Descriptor{}, fmt.Errorf("%q: %w (the source has: %s)", ref, ErrNotFound, strings.Join(names, ", "))
}

// sameTag compares two image references as docker does ("alpine" is
// "docker.io/library/alpine:latest").
func sameTag(a, b string) bool {
	ta, err1 := name.NewTag(a)
	tb, err2 := name.NewTag(b)
	return err1 == nil && err2 == nil && ta.Name() == tb.Name()
}

// platformImage follows an index down to the image for this host.
func platformImage(lp layout.Path, d v1.Descriptor) (v1.Descriptor, error) {
	for depth := 0; d.MediaType.IsIndex(); depth++ {
		if depth > 4 {
			return d, errors.New("indexes nested too deep")
		}
		raw, err := readSourceBlob(lp, d.Digest)
		if err != nil {
			return d, err
		}
		m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return d, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		var found *v1.Descriptor
		var seen []string
		for i, c := range m.Manifests {
			if c.Platform == nil {
				continue
			}
			seen = append(seen, c.Platform.OS+"/"+c.Platform.Architecture)
			if c.Platform.OS == "linux" && c.Platform.Architecture == runtime.GOARCH {
				found = &m.Manifests[i]
				break
			}
		}
		if found == nil {
			return d, fmt.Errorf("no image for linux/%s in %s (it has %s)", runtime.GOARCH, d.Digest, strings.Join(seen, ", "))
		}
		d = *found
	}
	if d.MediaType != types.OCIManifestSchema1 && d.MediaType != types.DockerManifestSchema2 {
		return d, fmt.Errorf("unsupported manifest media type %q", d.MediaType)
	}
	return d, nil
}

// importDocker copies an image of a docker save tar: its configuration as
// it is (so its digest stays docker's image id) and its layers uncompressed,
// each checked against its diff id; the manifest is a new OCI one.
func (s *Store) importDocker(src, ref string) (v1.Descriptor, string, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(src) }
	mf, err := tarball.LoadManifest(opener)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	var tag *name.Tag
	var srcName string
	switch {
	case ref == "" && len(mf) == 1:
		if len(mf[0].RepoTags) > 0 {
			srcName = mf[0].RepoTags[0]
		}
	case ref == "":
		var names []string
		for _, d := range mf {
			names = append(names, strings.Join(d.RepoTags, " "))
		}
		return v1.Descriptor{}, "", fmt.Errorf("the source holds %d images (%s): name one", len(mf), strings.Join(names, ", "))
	case strings.HasPrefix(ref, "sha256:"):
		hexID := strings.TrimPrefix(ref, "sha256:")
		for _, d := range mf {
			if c := strings.TrimSuffix(path.Base(d.Config), ".json"); c == hexID || c == ref {
				if len(mf) > 1 && len(d.RepoTags) == 0 {
					return v1.Descriptor{}, "", fmt.Errorf("%q has no tag in the source, which holds several images", ref)
				}
				if len(d.RepoTags) > 0 {
					t, err := name.NewTag(d.RepoTags[0])
					if err != nil {
						return v1.Descriptor{}, "", err
					}
					tag, srcName = &t, d.RepoTags[0]
				}
			}
		}
		if tag == nil && len(mf) != 1 {
			return v1.Descriptor{}, "", fmt.Errorf("%q: %w", ref, ErrNotFound)
		}
	default:
		t, err := name.NewTag(ref)
		if err != nil {
			return v1.Descriptor{}, "", fmt.Errorf("%q: %w", ref, err)
		}
		tag, srcName = &t, ref
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	sum := sha256.Sum256(rawCfg)
	cfgHash := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if strings.HasPrefix(ref, "sha256:") && cfgHash.String() != ref {
		return v1.Descriptor{}, "", fmt.Errorf("%q: %w", ref, ErrNotFound)
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: cfgHash},
	}
	for _, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return v1.Descriptor{}, "", err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return v1.Descriptor{}, "", err
		}
		cr := &countReader{r: rc}
		err = s.writeBlob(cr, diffID)
		rc.Close()
		if err != nil {
			return v1.Descriptor{}, "", err
		}
		size := cr.n
		if size == 0 {
			if fi, err := os.Stat(s.blobPath(diffID)); err == nil {
				size = fi.Size()
			}
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: diffID})
	}
	if err := s.writeBlob(bytes.NewReader(rawCfg), cfgHash); err != nil {
		return v1.Descriptor{}, "", err
	}
	return s.writeManifest(&m, srcName)
}

func (s *Store) writeManifest(m *v1.Manifest, srcName string) (v1.Descriptor, string, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	sum := sha256.Sum256(raw)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := s.writeBlob(bytes.NewReader(raw), h); err != nil {
		return v1.Descriptor{}, "", err
	}
	return v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: h}, srcName, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// readSourceBlob reads a manifest or index of a source layout (at most
// 4 MiB) and checks its digest.
func readSourceBlob(lp layout.Path, h v1.Hash) ([]byte, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	rc, err := lp.Blob(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 4<<20 {
		return nil, fmt.Errorf("blob %s: larger than 4 MiB", h)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != h.Hex {
		return nil, fmt.Errorf("blob %s: %w", h, ErrDigest)
	}
	return b, nil
}
