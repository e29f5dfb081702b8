//go:build linux

package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"golang.org/x/sys/unix"
)

// RefNameAnnotation names an image in an OCI layout's index, the store's
// included.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Store is a content-addressed image store in a directory of its own: an
// OCI image layout (blobs/sha256 and index.json, each image named by its
// RefNameAnnotation) and, beside it, every layer unpacked once in overlayfs
// format under layers/sha256/<diff id>, shared by every image that uses it.
// The directory is mode 0700. A Store may be used from several goroutines
// and processes at once: a lock file serialises the changes to the index,
// and a lock per layer its unpacking.
type Store struct {
	dir string
}

// DefaultDir is the store the command line uses when none is named:
// $XDG_CACHE_HOME/stockade/images, else ~/.cache/stockade/images.
func DefaultDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("image: no default store: %w", err)
	}
	return filepath.Join(cache, "stockade", "images"), nil
}

// Open opens the store in dir, making it when missing. Empty dir means
// DefaultDir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("image: store %q: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("image: store %q: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("image: store %q: %w", dir, err)
	}
	// The store holds set-user-id files of a root unpack: no one else may
	// reach them.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image: store %q: %w", dir, err)
	}
	for _, d := range []string{"blobs/sha256", "layers/sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("image: store %q: %w", dir, err)
		}
	}
	s := &Store{dir: dir}
	unlock, err := s.lock(context.Background(), true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		if _, err := layout.Write(dir, empty.Index); err != nil {
			return nil, fmt.Errorf("image: store %q: %w", dir, err)
		}
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Layer is one layer of an image.
type Layer struct {
	// Digest names the blob as stored (compressed or not), DiffID its
	// uncompressed tar stream, the name of its unpacked directory.
	Digest, DiffID v1.Hash
	MediaType      string
	Size           int64
}

// Image is an image in the store.
type Image struct {
	// Name is the image's name in the store ("" for one found by digest
	// alone), Digest its manifest's.
	Name   string
	Digest v1.Hash
	// Config is the image's configuration: the command, environment and
	// user it wants, its platform and history.
	Config *v1.ConfigFile
	// Layers are the image's layers, lowest first.
	Layers []Layer
	// Created is when the image was made, from its configuration.
	Created time.Time
}

// Size is the sum of the layers' stored sizes.
func (img *Image) Size() int64 {
	var n int64
	for _, l := range img.Layers {
		n += l.Size
	}
	return n
}

// lock takes the store's lock, exclusive for changes to the index and for
// removals, shared for reads and unpacks. It waits until ctx is done.
func (s *Store) lock(ctx context.Context, exclusive bool) (func(), error) {
	return flock(ctx, filepath.Join(s.dir, "lock"), exclusive)
}

// flock takes a lock on the file at path (made when missing), polling so
// that the wait ends with ctx.
func flock(ctx context.Context, path string, exclusive bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image: lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("image: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("image: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func (s *Store) path() layout.Path { return layout.Path(s.dir) }

// List returns the images in the store that have a name, sorted by name.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	idx, err := s.index()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range idx.Manifests {
		name := d.Annotations[RefNameAnnotation]
		if name == "" {
			continue
		}
		img, err := s.load(d.Digest, name)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) index() (*v1.IndexManifest, error) {
	ii, err := s.path().ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image: store index: %w", err)
	}
	idx, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image: store index: %w", err)
	}
	return idx, nil
}

// Get finds an image by its name in the store or by its manifest digest
// ("sha256:..."), or a unique prefix of either form's hex ("sha256:4f1c").
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) {
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.get(ref)
}

func (s *Store) get(ref string) (*Image, error) {
	idx, err := s.index()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.Annotations[RefNameAnnotation] == ref {
			return s.load(d.Digest, ref)
		}
		if strings.HasPrefix(ref, "sha256:") && len(ref) > len("sha256:")+3 && strings.HasPrefix(d.Digest.String(), ref) {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("image: %q: %w", ref, ErrNotFound)
	case len(found) > 1 && found[0].Digest != found[len(found)-1].Digest:
		return nil, fmt.Errorf("image: %q names several images", ref)
	}
	return s.load(found[0].Digest, found[0].Annotations[RefNameAnnotation])
}

// ErrNotFound is returned for a name or digest that no image in the store
// or in an imported source has.
var ErrNotFound = errors.New("no such image")

// load reads an image's manifest and configuration from the store's blobs,
// checking both against their digests.
func (s *Store) load(h v1.Hash, name string) (*Image, error) {
	raw, err := s.readBlob(h)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("image: manifest %s: %w", h, err)
	}
	rawCfg, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(rawCfg)))
	if err != nil {
		return nil, fmt.Errorf("image: config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image: %s: the manifest has %d layers and the config %d diff ids", h, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	img := &Image{Name: name, Digest: h, Config: cfg, Created: cfg.Created.Time}
	for i, l := range m.Layers {
		img.Layers = append(img.Layers, Layer{Digest: l.Digest, DiffID: cfg.RootFS.DiffIDs[i], MediaType: string(l.MediaType), Size: l.Size})
	}
	return img, nil
}

// readBlob reads a small blob (a manifest or a configuration, at most
// 4 MiB) and checks its digest.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return nil, fmt.Errorf("image: blob %s: %w", h, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<20+1))
	if err != nil {
		return nil, fmt.Errorf("image: blob %s: %w", h, err)
	}
	if len(b) > 4<<20 {
		return nil, fmt.Errorf("image: blob %s: larger than 4 MiB", h)
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != h.Hex {
		return nil, fmt.Errorf("image: blob %s: %w", h, ErrDigest)
	}
	return b, nil
}

// ErrDigest is returned when content does not match its digest.
var ErrDigest = errors.New("content does not match its digest")

func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return fmt.Errorf("image: unsupported digest %q", h.String())
	}
	return nil
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
}

// LayerDir returns the directory a layer is unpacked into (which exists
// once Unpack has made it).
func (s *Store) LayerDir(diffID v1.Hash) string {
	return filepath.Join(s.dir, "layers", diffID.Algorithm, diffID.Hex)
}

// writeBlob copies r into the store as the blob named want, checking the
// digest, unless the blob is there already. The copy goes to a temporary
// file that is synced and renamed into place.
func (s *Store) writeBlob(r io.Reader, want v1.Hash) error {
	if err := checkHash(want); err != nil {
		return err
	}
	if _, err := os.Stat(s.blobPath(want)); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return fmt.Errorf("image: write blob: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		return fmt.Errorf("image: write blob %s: %w", want, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return fmt.Errorf("image: blob %s: got sha256:%s: %w", want, got, ErrDigest)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("image: write blob %s: %w", want, err)
	}
	if err := os.Rename(f.Name(), s.blobPath(want)); err != nil {
		return fmt.Errorf("image: write blob %s: %w", want, err)
	}
	return nil
}

func sumHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// tag names the manifest desc in the index, taking the name from any image
// that had it.
func (s *Store) tag(desc v1.Descriptor, name string) error {
	if err := s.path().RemoveDescriptors(match.Annotation(RefNameAnnotation, name)); err != nil {
		return fmt.Errorf("image: name %q: %w", name, err)
	}
	desc.Annotations = map[string]string{RefNameAnnotation: name}
	desc.Platform = nil
	if err := s.path().AppendDescriptor(desc); err != nil {
		return fmt.Errorf("image: name %q: %w", name, err)
	}
	return nil
}

// Remove removes the image's name from the store, then every blob and
// unpacked layer that no named image uses any more. A layer still in use
// by a running sandbox must not be removed: stop the sandboxes first.
func (s *Store) Remove(ctx context.Context, name string) error {
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := s.get(name)
	if err != nil {
		return err
	}
	if img.Name == "" {
		return fmt.Errorf("image: %q: remove takes a name", name)
	}
	if err := s.path().RemoveDescriptors(match.Annotation(RefNameAnnotation, img.Name)); err != nil {
		return fmt.Errorf("image: remove %q: %w", name, err)
	}
	return s.collect()
}

// collect removes the blobs and layer directories no image of the index
// uses. The caller holds the exclusive lock.
func (s *Store) collect() error {
	idx, err := s.index()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, d := range idx.Manifests {
		img, err := s.load(d.Digest, "")
		if err != nil {
			return err
		}
		keep[d.Digest.Hex] = true
		m, err := s.readBlob(d.Digest)
		if err == nil {
			if mf, err := v1.ParseManifest(strings.NewReader(string(m))); err == nil {
				keep[mf.Config.Digest.Hex] = true
			}
		}
		for _, l := range img.Layers {
			keep[l.Digest.Hex] = true
			keep["layer:"+l.DiffID.Hex] = true
		}
	}
	var errs []error
	blobs, _ := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	for _, e := range blobs {
		if !keep[e.Name()] {
			errs = append(errs, os.Remove(filepath.Join(s.dir, "blobs", "sha256", e.Name())))
		}
	}
	layers, _ := os.ReadDir(filepath.Join(s.dir, "layers", "sha256"))
	for _, e := range layers {
		hexName := strings.TrimSuffix(e.Name(), ".lock")
		if !keep["layer:"+hexName] {
			errs = append(errs, removeAll(filepath.Join(s.dir, "layers", "sha256", e.Name())))
		}
	}
	return errors.Join(errs...)
}

// removeAll removes a directory tree, making the caller's read-only
// directories writable on the way.
func removeAll(p string) error {
	dfd, err := unix.Open(filepath.Dir(p), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := removeAllAt(dfd, filepath.Base(p)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("image: remove %s: %w", p, err)
	}
	return nil
}
