//go:build linux

package image

import "github.com/stockade/stockade/sandbox"

// Apply makes cfg run the image: its root becomes an overlay of the layers
// (cfg.Overlay's Dir, Size and Keep are kept when the caller set them),
// and the fields the caller left at their zero values take the image's
// settings: Env, Dir, the user (RunAsRoot for uid 0) and Args (the default
// command, when Runtime was asked for it). cfg.RootDir must be empty.
//
// sandbox.Config cannot express a user other than root whose group is 0
// (zero GID means the default, 1000): such an image's user gets group
// 1000 unless the caller sets GID.
func (rt *Runtime) Apply(cfg *sandbox.Config) {
	ov := sandbox.Overlay{}
	if cfg.Overlay != nil {
		ov = *cfg.Overlay
	}
	ov.Layers = append([]string(nil), rt.Layers...)
	cfg.Overlay = &ov
	if cfg.Env == nil {
		cfg.Env = append([]string(nil), rt.Env...)
	}
	if cfg.Dir == "" {
		cfg.Dir = rt.Dir
	}
	if len(cfg.Args) == 0 {
		cfg.Args = append([]string(nil), rt.Args...)
	}
	if !cfg.RunAsRoot && cfg.UID == 0 && cfg.GID == 0 {
		if rt.Root {
			cfg.RunAsRoot = true
		} else {
			cfg.UID, cfg.GID = rt.UID, rt.GID
		}
	}
}
