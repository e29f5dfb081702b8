//go:build linux

package image

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Progress reports how far an unpack has come.
type Progress struct {
	// Layer is the index of the layer being unpacked (from 0), of Layers.
	Layer, Layers int
	// DiffID names the layer.
	DiffID v1.Hash
	// Done and Total count the layer's stored bytes read so far and in all.
	Done, Total int64
	// Cached says the layer was unpacked already, by this or another
	// process, and nothing was read.
	Cached bool
	// Stats, in the last report of a layer this call unpacked, says what
	// the unpack left out (device nodes, set-id bits, attributes).
	Stats *UnpackStats
}

// Unpack makes sure every layer of img is unpacked in the store and returns
// their directories, lowest first, ready for sandbox.Overlay's Layers. Each
// layer is unpacked once: into a temporary directory of the store, checked
// against its digest and its diff id, synced and renamed into place, under
// a lock per layer so that concurrent unpacks of it (threads or processes)
// wait for the first. progress, when not nil, is called as the bytes are
// read.
func (s *Store) Unpack(ctx context.Context, img *Image, progress func(Progress)) ([]string, error) {
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dirs := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		report := func(p Progress) {
			if progress != nil {
				p.Layer, p.Layers, p.DiffID = i, len(img.Layers), l.DiffID
				progress(p)
			}
		}
		d, stats, err := s.unpackLayer(ctx, l, report)
		if err != nil {
			return nil, err
		}
		if stats != nil {
			report(Progress{Done: l.Size, Total: l.Size, Stats: stats})
		}
		dirs[i] = d
	}
	return dirs, nil
}

// unpackLayer unpacks one layer unless it is there; the caller holds the
// store's lock (shared).
func (s *Store) unpackLayer(ctx context.Context, l Layer, report func(Progress)) (string, *UnpackStats, error) {
	if err := checkHash(l.DiffID); err != nil {
		return "", nil, err
	}
	final := s.LayerDir(l.DiffID)
	if _, err := os.Stat(final); err == nil {
		report(Progress{Done: l.Size, Total: l.Size, Cached: true})
		return final, nil, nil
	}
	unlock, err := flock(ctx, final+".lock", true)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		report(Progress{Done: l.Size, Total: l.Size, Cached: true})
		return final, nil, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "layer-")
	if err != nil {
		return "", nil, fmt.Errorf("image: unpack %s: %w", l.DiffID, err)
	}
	done := false
	defer func() {
		if !done {
			removeAll(tmp)
		}
	}()
	stats, err := s.extract(ctx, l, tmp, report)
	if err != nil {
		return "", nil, fmt.Errorf("image: unpack layer %s: %w", l.DiffID, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", nil, err
	}
	// One syncfs writes the whole layer out before it is renamed into
	// place: a crash leaves a temporary directory, never half a layer.
	if err := syncDir(tmp, true); err != nil {
		return "", nil, fmt.Errorf("image: unpack layer %s: sync: %w", l.DiffID, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", nil, fmt.Errorf("image: unpack layer %s: %w", l.DiffID, err)
	}
	done = true
	if err := syncDir(filepath.Dir(final), false); err != nil {
		return "", nil, fmt.Errorf("image: unpack layer %s: sync: %w", l.DiffID, err)
	}
	return final, stats, nil
}

func syncDir(dir string, fs bool) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if fs {
		return unix.Syncfs(fd)
	}
	return unix.Fsync(fd)
}

// extract streams the layer's blob through its digest, its decompressor
// and its diff id into the unpacker; both digests are checked once the
// whole stream has been read, and a mismatch fails the unpack.
func (s *Store) extract(ctx context.Context, l Layer, dir string, report func(Progress)) (*UnpackStats, error) {
	if err := checkHash(l.Digest); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(l.Digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blobSum := sha256.New()
	var in io.Reader = io.TeeReader(&progressReader{ctx: ctx, r: f, total: l.Size, report: report}, blobSum)
	var stream io.Reader
	switch {
	case strings.HasSuffix(l.MediaType, "+gzip") || strings.HasSuffix(l.MediaType, ".tar.gzip"):
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		stream = zr
	case strings.HasSuffix(l.MediaType, "+zstd"):
		zr, err := zstd.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		stream = zr
	case strings.HasSuffix(l.MediaType, ".tar") || strings.HasSuffix(l.MediaType, "diff.tar"):
		stream = in
	default:
		return nil, fmt.Errorf("unsupported layer media type %q", l.MediaType)
	}
	diffSum := sha256.New()
	tee := io.TeeReader(stream, diffSum)
	u, err := newUnpacker(dir, os.Geteuid() != 0)
	if err != nil {
		return nil, err
	}
	defer u.close()
	if err := u.apply(tee); err != nil {
		return nil, err
	}
	// The tar end may be followed by padding: all of it is hashed.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return nil, err
	}
	if got := sumHex(blobSum); got != l.Digest.Hex {
		return nil, fmt.Errorf("blob is sha256:%s, want %s: %w", got, l.Digest, ErrDigest)
	}
	if got := sumHex(diffSum); got != l.DiffID.Hex {
		return nil, fmt.Errorf("uncompressed layer is sha256:%s, diff id %s: %w", got, l.DiffID, ErrDigest)
	}
	return &u.stats, nil
}

// progressReader reports the bytes read and stops at ctx's end.
type progressReader struct {
	ctx    context.Context
	r      io.Reader
	done   int64
	total  int64
	next   int64
	report func(Progress)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done >= p.next || errors.Is(err, io.EOF) {
		p.report(Progress{Done: p.done, Total: p.total})
		p.next = p.done + 1<<20
	}
	return n, err
}
