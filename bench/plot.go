package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The plot's colours, light to dark.
var palette = []color.Color{
	color.RGBA{R: 0x9e, G: 0xc5, B: 0xe8, A: 0xff},
	color.RGBA{R: 0x44, G: 0x88, B: 0xcc, A: 0xff},
	color.RGBA{R: 0x1b, G: 0x4f, B: 0x8a, A: 0xff},
	color.RGBA{R: 0x0b, G: 0x2a, B: 0x4f, A: 0xff},
}

// writePlot draws the report as a PNG of two panels: latency (p50 and p90)
// and throughput by number of launchers, a bar per runner.
func (rep *report) writePlot(path string) error {
	var rs []*result
	for _, r := range rep.Results {
		if !r.failed() && r.P50 > 0 {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return fmt.Errorf("plot: no runner has results")
	}
	// Horizontal bars are drawn from the bottom up: reverse, so that the
	// first runner is on top, as in the table.
	slices.Reverse(rs)
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}

	const w, h = 12 * vg.Inch, 5 * vg.Inch
	// The room each runner has on the y axis (less the titles and the x
	// axis), four fifths of it filled by its bars.
	room := (h - vg.Inch) / vg.Length(len(rs)) * 0.8

	lat := plot.New()
	lat.Title.Text = "start to exit, one at a time: p50 (light), p90 (dark)"
	lat.X.Label.Text = "ms"
	if err := bars(lat, []string{"p50", "p90"}, func(s int, r *result) float64 {
		return []float64{r.P50, r.P90}[s]
	}, rs, room); err != nil {
		return err
	}
	lat.NominalY(names...)

	thr := plot.New()
	var series, counts []string
	for _, l := range rep.Launchers {
		series = append(series, fmt.Sprintf("%d %s", l, plural(l, "launcher")))
		counts = append(counts, fmt.Sprint(l))
	}
	thr.Title.Text = fmt.Sprintf("throughput with %s launchers (light to dark)", strings.Join(counts, ", "))
	thr.X.Label.Text = "sandboxes per second"
	if err := bars(thr, series, func(s int, r *result) float64 {
		return r.Rate[rep.Launchers[s]]
	}, rs, room); err != nil {
		return err
	}
	thr.NominalY(names...)
	// The names are on the left panel's axis already.
	thr.Y.Tick.Label.Color = color.Transparent

	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter / 2, PadTop: vg.Centimeter / 4,
		PadBottom: vg.Centimeter / 4, PadLeft: vg.Centimeter / 4, PadRight: vg.Centimeter / 2}
	canvases := plot.Align([][]*plot.Plot{{lat, thr}}, tiles, dc)
	lat.Draw(canvases[0][0])
	thr.Draw(canvases[0][1])

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	return f.Close()
}

// bars adds to p a group of horizontal bars per runner, one per series
// (the titles say which is which: a legend would cover the longest bars),
// with value(series, runner) as their lengths, in room on the y axis.
func bars(p *plot.Plot, series []string, value func(int, *result) float64, rs []*result, room vg.Length) error {
	n := len(series)
	height := min(room/vg.Length(n), 5*vg.Millimeter)
	for s := range series {
		vs := make(plotter.Values, len(rs))
		for i, r := range rs {
			vs[i] = value(s, r)
		}
		b, err := plotter.NewBarChart(vs, height*0.9)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		b.Horizontal = true
		b.LineStyle.Width = 0
		b.Color = palette[s*len(palette)/max(n, 1)%len(palette)]
		// Series from the top down, centred on the runner's name.
		b.Offset = height * vg.Length(float64(n-1)/2-float64(s))
		p.Add(b)
	}
	p.X.Min = 0
	g := plotter.NewGrid()
	g.Horizontal.Color = nil
	p.Add(g)
	return nil
}
