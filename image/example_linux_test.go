//go:build linux

package image_test

import (
	"context"
	"fmt"
	"log"

	"github.com/stockade/stockade/image"
)

// An image saved with docker elsewhere (docker save alpine:3.19 >
// alpine.tar) goes into the default store, each layer unpacked once, and
// its configuration tells how to run it.
func ExampleStore_Import() {
	ctx := context.Background()
	st, err := image.Open("") // $XDG_CACHE_HOME/stockade/images
	if err != nil {
		log.Fatal(err)
	}
	img, err := st.Import(ctx, "alpine.tar", image.ImportOptions{Ref: "alpine:3.19"})
	if err != nil {
		log.Fatal(err)
	}
	layers, err := st.Unpack(ctx, img, nil) // cheap once unpacked
	if err != nil {
		log.Fatal(err)
	}
	rt, err := img.Runtime(layers, true) // true: its Entrypoint and Cmd
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rt.Args, rt.Env, rt.Dir)
}

// A sandbox's upper layer (Sandbox.Upper) becomes a new image on top of
// the one it ran, and the new image can be exported for other hosts.
func ExampleStore_Save() {
	ctx := context.Background()
	st, err := image.Open("")
	if err != nil {
		log.Fatal(err)
	}
	base, err := st.Get(ctx, "alpine:3.19")
	if err != nil {
		log.Fatal(err)
	}
	upper := "/var/tmp/run1/upper" // from Sandbox.Upper, or kept with Overlay.Keep
	img, err := st.Save(ctx, base, upper, image.SaveOptions{Name: "alpine:tooled"})
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Export(ctx, img.Name, "alpine-tooled.tar", ""); err != nil {
		log.Fatal(err)
	}
}
