// Package imagetest builds small OCI images for the tests and the bench: a
// directory tree or a few files as a tar layer, tar layers as an image for
// this host, and images as a named OCI layout. It returns errors and never
// fails a test itself, so that the bench (a program) can use it too.
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"maps"
	"runtime"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stockade/stockade/internal/tartree"
)

// RefName is the annotation that names an image of an OCI layout.
const RefName = "org.opencontainers.image.ref.name"

// TarDir returns the tree under root (root itself left out) as a tar
// stream whose entries are owned by root with no user or group names, as
// the layer of an image's root file system is.
func TarDir(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tartree.Write(tw, root)
	if err == nil {
		err = tw.Close()
	}
	return buf.Bytes(), err
}

// TarFiles returns a tar stream of regular files (mode 0755), the bodies
// of files by name, in the order of their names.
func TarFiles(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		body := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	err := tw.Close()
	return buf.Bytes(), err
}

// Image stacks tar streams (lowest first) into an OCI image for this host
// (linux, runtime.GOARCH) with the configuration cfg; its layers are
// gzip'd.
func Image(cfg v1.Config, layers ...[]byte) (v1.Image, error) {
	return build(cfg, true, layers)
}

// UncompressedImage is Image with the layers stored as plain tar streams.
func UncompressedImage(cfg v1.Config, layers ...[]byte) (v1.Image, error) {
	return build(cfg, false, layers)
}

func build(cfg v1.Config, gz bool, layers [][]byte) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var diffIDs []v1.Hash
	for _, l := range layers {
		diffID, _, err := v1.SHA256(bytes.NewReader(l))
		if err != nil {
			return nil, err
		}
		diffIDs = append(diffIDs, diffID)
		blob, mt := l, types.OCIUncompressedLayer
		if gz {
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			if _, err := zw.Write(l); err != nil {
				return nil, err
			}
			if err := zw.Close(); err != nil {
				return nil, err
			}
			blob, mt = zb.Bytes(), types.OCILayer
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(blob, mt), History: v1.History{CreatedBy: "imagetest"}})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	// A static layer names its blob's digest as its diff id: a gzip'd
	// one's is the digest of its tar stream.
	cf.RootFS.DiffIDs = diffIDs
	return mutate.ConfigFile(img, cf)
}

// WriteLayout writes the images, named by their keys, as an OCI layout in
// dir.
func WriteLayout(dir string, imgs map[string]v1.Image) (layout.Path, error) {
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	for n, img := range imgs {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{RefName: n})); err != nil {
			return "", err
		}
	}
	return lp, nil
}
