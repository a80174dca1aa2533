package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Result is one run of the suite, as written to bench/results/<date>-<commit>.json.
type Result struct {
	Machine    Machine        `json:"machine"`
	Commit     string         `json:"commit"`
	Date       time.Time      `json:"date"`
	Quick      bool           `json:"quick"`
	DurationS  float64        `json:"duration_s"`
	Parameters map[string]any `json:"parameters"`
	// Baselines are measured in the same run: the HTTP ceiling (no-op
	// server) and the fsync ceiling.
	Baselines []Workload `json:"baselines"`
	Workloads []Workload `json:"workloads"`
	Goals     []Goal     `json:"goals"`
	Micro     []Micro    `json:"micro,omitempty"`
	Notes     []string   `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemBytes  int64  `json:"mem_bytes,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	// CPU pressure (/proc/pressure/cpu "some" avg60) at start and end: how
	// much other work shared the machine.
	CPUPressureStart string `json:"cpu_pressure_start,omitempty"`
	CPUPressureEnd   string `json:"cpu_pressure_end,omitempty"`
	LoadAvgStart     string `json:"loadavg_start,omitempty"`
}

// Workload is one measured configuration of a workload (or a baseline).
type Workload struct {
	ID         string             `json:"id"`      // W1 … W9, or a baseline name
	Variant    string             `json:"variant"` // e.g. nodes=3
	Parameters map[string]any     `json:"parameters,omitempty"`
	Figures    map[string]float64 `json:"figures"`
	// Runs are the load-generator measurements behind the figures, with
	// HDR histograms and throughput series (e.g. "ack", "index_lag").
	Runs map[string]Stats `json:"runs,omitempty"`
	// Timelines are gauges read during the run (W9's index lag every
	// 250 ms), drawn as <prefix>-<ID>-<chart>.png.
	Timelines map[string]Timeline `json:"timelines,omitempty"`
	Baseline  string              `json:"baseline,omitempty"` // ID/variant of the baseline the ratio is to
	Ratio     float64             `json:"ratio,omitempty"`
	// Rounds are the figures of each round of a workload run in rounds
	// interleaved with a baseline (W2 on 3 nodes and NATS JetStream).
	Rounds []map[string]float64 `json:"rounds,omitempty"`
}

// Timeline is a gauge read over a run: Values[i] was read AtS[i] seconds
// after the run started.
type Timeline struct {
	Chart  string    `json:"chart"` // the chart it is drawn on, e.g. "lag"
	Unit   string    `json:"unit"`
	AtS    []float64 `json:"at_s"`
	Values []float64 `json:"values"`
}

// Name is "ID variant".
func (w Workload) Name() string {
	if w.Variant == "" {
		return w.ID
	}
	return w.ID + " " + w.Variant
}

// Goal is one target of the issue, reported against (not asserted).
type Goal struct {
	Name     string  `json:"name"`
	Metric   string  `json:"metric"`
	Op       string  `json:"op"` // ">=" or "<="
	Target   float64 `json:"target"`
	Measured float64 `json:"measured"`
	Met      bool    `json:"met"`
	Have     bool    `json:"have"` // false when the workload did not run
}

// Check fills Met from Measured.
func (g *Goal) Check() {
	g.Met = false
	if !g.Have {
		return
	}
	switch g.Op {
	case ">=":
		g.Met = g.Measured >= g.Target
	case "<=":
		g.Met = g.Measured <= g.Target
	}
}

// Micro is one Go micro-benchmark (median over -count runs).
type Micro struct {
	Name    string             `json:"name"`
	Package string             `json:"package"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // ns/op, B/op, allocs/op, MB/s, custom units
}

// WriteJSON writes r to path, indented.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// ReadResult reads a result written by WriteJSON.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode result %s: %w", path, err)
	}
	return &r, nil
}

// Find returns the workload (or baseline) with id and variant.
func (r *Result) Find(id, variant string) (Workload, bool) {
	for _, ws := range [][]Workload{r.Workloads, r.Baselines} {
		for _, w := range ws {
			if w.ID == id && w.Variant == variant {
				return w, true
			}
		}
	}
	return Workload{}, false
}

// figureOrder is the column order of the Markdown table; other figures
// follow in name order under "other".
func mainFigures() []string {
	return []string{"events_per_s", "mb_per_s", "p50_ms", "p99_ms", "p999_ms"}
}

// FormatNumber prints v compactly: thousands separators for big values,
// three significant digits for small ones.
func FormatNumber(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		s := fmt.Sprintf("%.0f", v)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// Markdown renders the summary: the workloads with their baselines and
// ratios, the goals, and the micro-benchmarks.
func (r *Result) Markdown() string {
	var b strings.Builder
	kind := "full"
	if r.Quick {
		kind = "quick"
	}
	fmt.Fprintf(&b, "# The Eye bench: %s run, commit %s, %s\n\n", kind, r.Commit, r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s/%s, %d CPUs (%s), %s RAM, kernel %s, %s; CPU pressure avg60 at start %s, at end %s. Run took %.0f s.\n\n",
		m.OS, m.Arch, m.CPUs, m.CPUModel, humanize.IBytes(uint64(m.MemBytes)), m.Kernel, m.GoVersion, m.CPUPressureStart, m.CPUPressureEnd, r.DurationS)
	b.WriteString("| workload | events/s | MB/s | p50 ms | p99 ms | p99.9 ms | other | vs baseline |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|---|\n")
	rows := append(append([]Workload(nil), r.Baselines...), r.Workloads...)
	for _, w := range rows {
		fmt.Fprintf(&b, "| %s |", w.Name())
		for _, f := range mainFigures() {
			if v, ok := w.Figures[f]; ok {
				fmt.Fprintf(&b, " %s |", FormatNumber(v))
			} else {
				b.WriteString(" |")
			}
		}
		var other []string
		for _, k := range slices.Sorted(maps.Keys(w.Figures)) {
			if !slices.Contains(mainFigures(), k) {
				other = append(other, fmt.Sprintf("%s=%s", k, FormatNumber(w.Figures[k])))
			}
		}
		ratio := ""
		if w.Baseline != "" {
			ratio = fmt.Sprintf("%.1f%% of %s", 100*w.Ratio, w.Baseline)
		}
		fmt.Fprintf(&b, " %s | %s |\n", strings.Join(other, ", "), ratio)
	}
	b.WriteString(sustainedTable(r.Workloads))
	b.WriteString(overloadTable(r.Workloads))
	if len(r.Goals) > 0 {
		b.WriteString("\n| goal | target | measured | met |\n|---|---|---:|---|\n")
		for _, g := range r.Goals {
			met := "no"
			switch {
			case !g.Have:
				met = "not measured"
			case g.Met:
				met = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s %s %s | %s | %s |\n", g.Name, g.Metric, g.Op, FormatNumber(g.Target), FormatNumber(g.Measured), met)
		}
	}
	if len(r.Micro) > 0 {
		b.WriteString("\n| micro-benchmark | ns/op | B/op | allocs/op | other |\n|---|---:|---:|---:|---|\n")
		for _, mb := range r.Micro {
			var other []string
			for _, k := range slices.Sorted(maps.Keys(mb.Metrics)) {
				if k != "ns/op" && k != "B/op" && k != "allocs/op" {
					other = append(other, FormatNumber(mb.Metrics[k])+" "+k)
				}
			}
			fmt.Fprintf(&b, "| %s %s | %s | %s | %s | %s |\n", mb.Package, mb.Name, FormatNumber(mb.Metrics["ns/op"]),
				FormatNumber(mb.Metrics["B/op"]), FormatNumber(mb.Metrics["allocs/op"]), strings.Join(other, ", "))
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}
