package bench

import (
	"fmt"
	"image/color"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// chartGroup is the runs drawn on one pair of charts.
type chartGroup struct {
	id    string
	lines []chartLine
	// timelines are the group's gauges by chart name, in the order met.
	charts    []string
	timelines map[string][]timelineLine
}

type timelineLine struct {
	label string
	tl    Timeline
}

type chartLine struct {
	label string
	st    Stats
}

// groups collects, per workload id, every run with a latency histogram
// or a throughput series (the no-op baseline goes with the workload whose
// load it ran), and every timeline.
func groups(r *Result) []chartGroup {
	byID := map[string]*chartGroup{}
	var order []string
	group := func(id string) *chartGroup {
		g, ok := byID[id]
		if !ok {
			g = &chartGroup{id: id, timelines: map[string][]timelineLine{}}
			byID[id] = g
			order = append(order, id)
		}
		return g
	}
	for _, w := range append(append([]Workload(nil), r.Baselines...), r.Workloads...) {
		id := w.ID
		switch {
		case w.ID == "http-noop":
			id = strings.TrimSuffix(w.Variant, " load")
		case w.ID == "fsync":
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(w.Runs)) {
			label := w.Name()
			if len(w.Runs) > 1 {
				label += " " + k
			}
			g := group(id)
			g.lines = append(g.lines, chartLine{label: label, st: w.Runs[k]})
		}
		for _, k := range slices.Sorted(maps.Keys(w.Timelines)) {
			g, tl := group(id), w.Timelines[k]
			if _, ok := g.timelines[tl.Chart]; !ok {
				g.charts = append(g.charts, tl.Chart)
			}
			g.timelines[tl.Chart] = append(g.timelines[tl.Chart], timelineLine{label: w.Name() + " " + k, tl: tl})
		}
	}
	out := make([]chartGroup, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

func palette(i int) color.Color {
	cs := []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}}
	return cs[i%len(cs)]
}

// WriteCharts draws, per workload, throughput over time and latency by
// percentile, as PNGs named <prefix>-<W>-throughput.png and
// <prefix>-<W>-latency.png; it returns the file names.
func WriteCharts(r *Result, prefix string) ([]string, error) {
	var files []string
	for _, g := range groups(r) {
		tp := plot.New()
		tp.Title.Text = g.id + ": throughput over time"
		tp.X.Label.Text = "s"
		tp.Y.Label.Text = "events/s"
		tp.Legend.Top = true
		tp.Legend.TextStyle.Font.Size = vg.Points(7)
		lat := plot.New()
		lat.Title.Text = g.id + ": latency by percentile"
		lat.X.Label.Text = "percentile"
		lat.Y.Label.Text = "ms (log)"
		lat.Y.Scale = plot.LogScale{}
		lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		lat.X.Tick.Marker = nineTicks{}
		lat.Legend.Top = true
		lat.Legend.Left = true
		lat.Legend.TextStyle.Font.Size = vg.Points(7)
		var nt, nl int
		for i, ln := range g.lines {
			if len(ln.st.Series.PerSec) > 0 {
				pts := make(plotter.XYs, len(ln.st.Series.PerSec))
				for j, v := range ln.st.Series.PerSec {
					pts[j].X = float64(j+1) * float64(ln.st.Series.BucketMS) / 1000
					pts[j].Y = v
				}
				if err := addLine(tp, pts, i, ln.label); err != nil {
					return files, fmt.Errorf("chart %s: %w", g.id, err)
				}
				nt++
			}
			h := ln.st.Hist()
			if h == nil || h.TotalCount() == 0 {
				continue
			}
			var pts plotter.XYs
			for _, q := range []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99} {
				v := float64(h.ValueAtQuantile(q)) / 1000
				if v <= 0 {
					v = 0.001
				}
				pts = append(pts, plotter.XY{X: nines(q), Y: v})
			}
			if err := addLine(lat, pts, i, ln.label); err != nil {
				return files, fmt.Errorf("chart %s: %w", g.id, err)
			}
			nl++
		}
		base := prefix + "-" + strings.ReplaceAll(g.id, " ", "_")
		if nt > 0 {
			if err := tp.Save(6*vg.Inch, 3.5*vg.Inch, base+"-throughput.png"); err != nil {
				return files, fmt.Errorf("chart %s: %w", g.id, err)
			}
			files = append(files, filepath.Base(base+"-throughput.png"))
		}
		if nl > 0 {
			if err := lat.Save(6*vg.Inch, 3.5*vg.Inch, base+"-latency.png"); err != nil {
				return files, fmt.Errorf("chart %s: %w", g.id, err)
			}
			files = append(files, filepath.Base(base+"-latency.png"))
		}
		for _, c := range g.charts {
			f, err := timelineChart(g.id, c, g.timelines[c], base+"-"+c+".png")
			if err != nil {
				return files, err
			}
			files = append(files, f)
		}
	}
	return files, nil
}

// timelineChart draws the gauges of one chart over time into file.
func timelineChart(id, chart string, lines []timelineLine, file string) (string, error) {
	p := plot.New()
	p.Title.Text = id + ": " + chart + " over time"
	p.X.Label.Text = "s"
	p.Y.Label.Text = lines[0].tl.Unit
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	for i, ln := range lines {
		if len(ln.tl.Values) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(ln.tl.Values))
		for j, v := range ln.tl.Values {
			pts[j].X, pts[j].Y = ln.tl.AtS[j], v
		}
		if err := addLine(p, pts, i, ln.label); err != nil {
			return "", fmt.Errorf("chart %s %s: %w", id, chart, err)
		}
	}
	if err := p.Save(6*vg.Inch, 3.5*vg.Inch, file); err != nil {
		return "", fmt.Errorf("chart %s %s: %w", id, chart, err)
	}
	return filepath.Base(file), nil
}

// nines maps a percentile to the number of nines: 90 → 1, 99 → 2, 99.9 → 3.
func nines(q float64) float64 {
	if q >= 100 {
		return 5
	}
	return -math.Log10(1 - q/100)
}

// nineTicks labels the nines axis with percentiles.
type nineTicks struct{}

func (nineTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for _, q := range []float64{0, 50, 90, 99, 99.9, 99.99} {
		x := nines(q)
		if x >= min && x <= max {
			ts = append(ts, plot.Tick{Value: x, Label: fmt.Sprintf("p%g", q)})
		}
	}
	return ts
}

// addLine adds pts to p as the i-th line of the chart, in the i-th
// palette colour, with label in the legend.
func addLine(p *plot.Plot, pts plotter.XYs, i int, label string) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = palette(i)
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}
