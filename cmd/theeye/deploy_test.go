package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The operator's files in deploy/: the Grafana dashboard and the Prometheus
// alerting rules. Every metric they name is one a real node's /metrics
// serves, every expression parses (promtool), and the alerts fire when and
// for what testdata/theeye-alerts.test.yml says.

const (
	dashboardFile  = "../../deploy/grafana/theeye-dashboard.json"
	alertsFile     = "../../deploy/prometheus/theeye-alerts.yml"
	alertsTestFile = "testdata/theeye-alerts.test.yml"
	readmeFile     = "../../README.md"
	deployReadme   = "../../deploy/README.md"
)

// metricNameRE finds our metric names in PromQL, in rules and in their
// descriptions alike.
var metricNameRE = regexp.MustCompile(`\btheeye_[a-zA-Z0-9_:]*`)

// TestDeployMetricsServed: every theeye_ name the dashboard and the rules
// use is a metric a real node serves. A histogram is named by its family
// (theeye_http_request_seconds) or by one of its series (_bucket, _sum,
// _count).
func TestDeployMetricsServed(t *testing.T) {
	n := startNode(t, t.TempDir())
	// Vectors without children print nothing, not even # TYPE: give the
	// request counters and the latency histogram their first series.
	key := n.createApp("deploy")
	n.post(key, "application/json", []byte(exPageview))
	for _, r := range []struct {
		path, key string
		want      int
	}{{"/v1/apps", testAdminKey, 200}, {"/v1/apps", "", 401}, {"/no/such/route", testAdminKey, 404}} {
		if st, b, _ := do(t, "GET", n.URL+r.path, r.key, "", nil); st != r.want {
			t.Fatalf("GET %s: %d %s, want %d", r.path, st, b, r.want)
		}
	}
	st, body, _ := do(t, "GET", n.URL+"/metrics", "", "", nil)
	if st != 200 {
		t.Fatalf("GET /metrics: %d", st)
	}
	types := servedMetrics(t, body)
	for _, file := range []string{dashboardFile, alertsFile} {
		names := usedMetrics(t, file)
		if len(names) < 10 {
			t.Fatalf("%s names only %d theeye_ metrics: %v", file, len(names), names)
		}
		for _, name := range names {
			if !served(types, name) {
				t.Errorf("%s uses %s, which /metrics does not serve", file, name)
			}
		}
	}
}

// servedMetrics returns the type of every metric family in a /metrics
// answer, by its # TYPE line.
func servedMetrics(t *testing.T, body []byte) map[string]string {
	t.Helper()
	types := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if types["theeye_ready"] != "gauge" {
		t.Fatalf("/metrics has no gauge theeye_ready:\n%s", body)
	}
	return types
}

// served reports whether name is a family of types or a series of one of
// its histograms (or summaries).
func served(types map[string]string, name string) bool {
	if types[name] != "" {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch types[base] {
		case "histogram":
			return true
		case "summary":
			return suffix != "_bucket"
		}
	}
	return false
}

// usedMetrics returns every theeye_ name in file, sorted, once each.
func usedMetrics(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	names := metricNameRE.FindAllString(string(b), -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// promtool returns the path of promtool, or skips the test when it is not
// installed (make test-deps installs it, from Debian's prometheus package).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no promtool on a CI machine: make test-deps should have installed it (apt-get install prometheus)")
	}
	t.Skip("promtool is not installed (make test-deps, or apt-get install --no-install-recommends prometheus)")
	return ""
}

func runPromtool(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDeployAlertRules: every alert has a severity, a summary and a
// description naming README sections that exist, and a row in
// deploy/README.md's table; promtool accepts the rules file (expressions
// and annotation templates) and its unit tests of the alerts pass.
func TestDeployAlertRules(t *testing.T) {
	src, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	checkAlertAnnotations(t, string(src))
	doc, err := os.ReadFile(deployReadme)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range alertNames(string(src)) {
		if !bytes.Contains(doc, []byte("| "+name+" |")) {
			t.Errorf("%s does not list alert %s", deployReadme, name)
		}
	}

	bin := promtool(t)
	runPromtool(t, bin, "check", "rules", alertsFile)

	// promtool compares annotations too; the unit tests are about when and
	// for what an alert fires, so they run on the rules without them.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "theeye-alerts.yml"), stripAnnotations(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertsTestFile)
	if err != nil {
		t.Fatal(err)
	}
	testCopy := filepath.Join(dir, filepath.Base(alertsTestFile))
	if err := os.WriteFile(testCopy, tests, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, bin, "test", "rules", testCopy)

	// Every alert of the rules file has at least one unit test.
	for _, name := range alertNames(string(src)) {
		if !bytes.Contains(tests, []byte("alertname: "+name+"\n")) {
			t.Errorf("%s has no test in %s", name, alertsTestFile)
		}
	}
}

// alertNameRE finds the alerts of a rules file.
var alertNameRE = regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`)

func alertNames(src string) []string {
	var names []string
	for _, m := range alertNameRE.FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	return names
}

// readmeRefRE finds `README.md, section "A"` and `README.md, sections "A"
// and "B"` in a description.
var readmeRefRE = regexp.MustCompile(`README\.md, sections? ((?:"[^"]+"(?:, | and )?)+)`)

var (
	severityRE = regexp.MustCompile(`severity: (critical|warning|info)\b`)
	quotedRE   = regexp.MustCompile(`"([^"]+)"`)
)

// checkAlertAnnotations: each alert, once, with a severity of critical,
// warning or info, a summary, and a description that says where in the
// README to read on, by the name of a section the README has.
func checkAlertAnnotations(t *testing.T, src string) {
	t.Helper()
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			headings[title] = true
		}
	}
	names := alertNames(src)
	if len(names) < 10 {
		t.Fatalf("only %d alerts in %s", len(names), alertsFile)
	}
	blocks := alertNameRE.Split(src, -1)[1:] // blocks[i] is the rest of alert names[i]
	seen := map[string]bool{}
	for i, name := range names {
		if seen[name] {
			t.Errorf("alert %s twice", name)
		}
		seen[name] = true
		block := strings.Join(strings.Fields(blocks[i]), " ")
		if !severityRE.MatchString(block) {
			t.Errorf("%s: no severity of critical, warning or info", name)
		}
		if !strings.Contains(block, "summary: ") || !strings.Contains(block, "description: ") {
			t.Errorf("%s: no summary and description annotations", name)
		}
		refs := readmeRefRE.FindAllStringSubmatch(block, -1)
		if len(refs) == 0 {
			t.Errorf("%s: its description names no README.md section", name)
		}
		for _, ref := range refs {
			for _, q := range quotedRE.FindAllStringSubmatch(ref[1], -1) {
				if !headings[q[1]] {
					t.Errorf("%s: README.md has no section %q", name, q[1])
				}
			}
		}
	}
}

// stripAnnotations returns a rules file without its annotations: blocks.
func stripAnnotations(src []byte) []byte {
	var out []string
	skip := -1 // the indent of the annotations: line being skipped, or -1
	for _, line := range strings.Split(string(src), "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if skip >= 0 && (strings.TrimSpace(line) == "" || indent > skip) {
			continue
		}
		skip = -1
		if strings.TrimSpace(line) == "annotations:" {
			skip = indent
			continue
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// grafanaVars stand in for the dashboard's variables when promtool parses
// its expressions.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$job", "theeye", "$instance", ".*")

// TestDeployDashboard: the dashboard is JSON Grafana imports as it is: a
// datasource variable every panel and query uses (so it works with any
// Prometheus datasource), unique panel ids, a query in every panel; and
// promtool parses every expression (each wrapped in a recording rule).
func TestDeployDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string           `json:"uid"`
		Title      string           `json:"title"`
		Schema     int              `json:"schemaVersion"`
		Panels     []map[string]any `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
				Query      any
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" || dash.Title == "" || dash.Schema < 36 || len(dash.Panels) < 10 {
		t.Fatalf("%s: uid %q, title %q, schemaVersion %d, %d panels", dashboardFile, dash.UID, dash.Title, dash.Schema, len(dash.Panels))
	}
	if len(dash.Templating.List) == 0 || dash.Templating.List[0].Name != "datasource" ||
		dash.Templating.List[0].Type != "datasource" || dash.Templating.List[0].Query != "prometheus" {
		t.Fatalf("%s: the first variable is not the Prometheus datasource variable: %+v", dashboardFile, dash.Templating.List)
	}
	checkPanels(t, dash.Panels)

	var exprs []string
	collectExprs(mustDecode(t, b), &exprs)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		e = grafanaVars.Replace(e)
		if strings.Contains(e, "$") {
			t.Fatalf("an expression uses a variable this test does not know: %s", e)
		}
		q, err := json.Marshal(e) // a JSON string is a YAML double-quoted scalar
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&rules, "      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-exprs.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions in %s", len(exprs), dashboardFile)
	}
	runPromtool(t, promtool(t), "check", "rules", file)
}

// checkPanels: unique ids, a grid position, the datasource variable on
// every panel and query, an expression in every query.
func checkPanels(t *testing.T, panels []map[string]any) {
	t.Helper()
	ids := map[float64]bool{}
	for _, p := range panels {
		id, _ := p["id"].(float64)
		title, _ := p["title"].(string)
		if ids[id] || id == 0 || title == "" || p["gridPos"] == nil {
			t.Errorf("panel %q: id %v (unique and set?), gridPos %v", title, p["id"], p["gridPos"])
		}
		ids[id] = true
		if p["type"] == "row" {
			continue
		}
		if !usesDatasourceVar(p["datasource"]) {
			t.Errorf("panel %q: datasource %v, want the ${datasource} variable", title, p["datasource"])
		}
		targets, _ := p["targets"].([]any)
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		for _, tg := range targets {
			tm, _ := tg.(map[string]any)
			if expr, _ := tm["expr"].(string); expr == "" || !usesDatasourceVar(tm["datasource"]) {
				t.Errorf("panel %q: a query with expr %q, datasource %v", title, tm["expr"], tm["datasource"])
			}
		}
	}
}

func usesDatasourceVar(ds any) bool {
	m, _ := ds.(map[string]any)
	return m["type"] == "prometheus" && m["uid"] == "${datasource}"
}

func mustDecode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// collectExprs appends every "expr" string under v: panel queries and
// annotation queries.
func collectExprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		if e, ok := v["expr"].(string); ok {
			*out = append(*out, e)
		}
		for _, c := range v {
			collectExprs(c, out)
		}
	case []any:
		for _, c := range v {
			collectExprs(c, out)
		}
	}
}
