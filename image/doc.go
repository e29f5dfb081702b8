// Package image runs OCI images in sandboxes: a content-addressed store of
// images whose layers are unpacked once each, in overlayfs's own format, so
// that they can be given as they are to sandbox.Overlay's Layers, and a way
// back (Save) from a sandbox's writable upper layer to a new image.
//
// # Use
//
//	st, _ := image.Open("")                        // DefaultDir, mode 0700
//	img, _ := st.Import(ctx, "alpine.tar", image.ImportOptions{Ref: "alpine:3.19"})
//	layers, _ := st.Unpack(ctx, img, nil)          // once; then shared
//	rt, _ := img.Runtime(layers, true)             // Env, Dir, user, command
//
// and a sandbox.Config with an Overlay of rt.Layers, rt.Env, rt.Dir and the
// user. After the run, Store.Save turns Sandbox.Upper into a new image, and
// Store.Export writes any image of the store as an OCI layout or archive.
//
// # Sources
//
// Import reads an OCI image layout directory, an OCI archive (the layout in
// a tar) or a docker save tar, selects an image by name or digest, and
// follows an index to the image of the host's platform. Layouts and
// archives are read with github.com/google/go-containerregistry (layout,
// tarball), the library crane and ko are built on; the store itself is an
// OCI layout, so Export is go-containerregistry's layout writer. A docker
// save's layers are stored uncompressed (they come so), with their diff
// ids as digests.
//
// # Unpacking, and why not umoci or containerd
//
// The layers are unpacked by this package's own tar applier, on
// archive/tar. umoci's oci/layer has an overlayfs on-disk format that fits,
// but it brings a dozen modules (apex/log and logrus as global loggers,
// go-mtree, protobuf for its rootless ownership records, pgzip), keeps a
// rootless unpack's ids in xattrs instead of giving the files to the
// caller, and creates device nodes; containerd's archive package applies
// whiteouts by deleting from a merged tree (its overlay conversion lives
// in the snapshotter) and pulls in containerd's module. The applier here is
// small and every path it touches is resolved by the kernel inside the
// layer's directory (openat2 with RESOLVE_IN_ROOT), so:
//
//   - a symbolic link is never followed out of the layer: a layer that
//     plants a -> /etc and then writes a/passwd writes the layer's own
//     etc/passwd; the final component of every entry is created, replaced
//     or removed relative to its parent's descriptor, never through a link;
//   - a hard link may only name an earlier entry of the same layer;
//   - character and block devices are skipped (counted in UnpackStats), and
//     only user.* extended attributes are kept (not file capabilities, not
//     overlayfs's own);
//   - host root gives the files the image's ids and keeps set-user-id and
//     set-group-id bits (the store is 0700, so no host user can reach
//     them); an ordinary user's unpack leaves every file the caller's and
//     drops those bits;
//   - ".wh.NAME" becomes a 0:0 character device NAME and ".wh..wh..opq" the
//     attribute user.overlay.opaque="y" on its directory (the sandbox mounts
//     the overlay with "userxattr" inside its user namespace); an ordinary
//     user may make both (Linux 5.8 and later);
//   - each layer is unpacked into a temporary directory of the store,
//     checked against its digest and diff id as it streams, synced with one
//     syncfs and renamed into layers/sha256/<diff id>, under a lock file of
//     its own: concurrent unpacks of a layer, from threads or processes,
//     wait for the first and share its result. A layer is unpacked once and
//     shared by every image that uses it.
//
// A layer is unpacked alone, without the layers below it, as overlayfs
// wants: a path that goes through a symbolic link of a lower layer becomes
// a directory of this layer.
//
// # Image configuration
//
// Image.Runtime applies the image's Env (adding a PATH when it has none),
// WorkingDir ("/" when unset), User (a name is looked up in the image's own
// /etc/passwd and /etc/group, read from the layers as overlayfs would show
// them, refusing symbolic links), and Entrypoint plus Cmd as the command
// only when the caller opts in, since an empty Args is otherwise an error
// or a long-lived sandbox. ExposedPorts are reported, not published: a
// sandbox has no network unless asked.
//
// The package works on Linux only; elsewhere it is empty.
package image
