package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// xssNote is event data an attacker could send: the page must show it as
// text. Were it parsed as markup its handler would set window.__pwned
// (unless the CSP stopped it: the test checks both that no <img> reached
// the page and that nothing ran).
const xssNote = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`

// xssShown is how the start of xssNote reads on the page, inside the data
// as JSON.
const xssShown = `<img src=x onerror=\"window.__pwned=1\"><script>`

// explorer drives /explore in a headless chromium for one test.
type explorer struct {
	t    *testing.T
	ctx  context.Context
	n    *proc
	dir  string // where the screenshots go
	read string // a read key (no admin)

	mu      sync.Mutex
	console []chromedp.ConsoleMessage // what the page wrote to its console
}

// listen collects the page's console (exceptions, CSP reports, failed
// loads) from now until ctx ends.
func (x *explorer) listen() {
	msgs := chromedp.Console(x.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			x.mu.Lock()
			x.console = append(x.console, m)
			x.mu.Unlock()
		}
	}()
}

// consoleErrors are the console's exceptions, errors and warnings so far
// (a CSP violation is one), less failed loads: the favicon this node does
// not have, and the API errors the test provokes, which the page shows.
func (x *explorer) consoleErrors() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for _, m := range x.console {
		if m.Source == "network" {
			continue
		}
		if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
			out = append(out, m.String()+" ("+m.URL+")")
		}
	}
	return out
}

func (x *explorer) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	x.t.Helper()
	if err := chromedp.Do(x.ctx, steps...); err != nil {
		x.t.Fatalf("browser: %s: %v; console: %q", what, err, x.consoleErrors())
	}
}

// set sets the value of the form field with this id, as typing would
// leave it (chromedp's SetValue refuses "" and Clear sets the attribute,
// which a field that was typed into no longer shows).
func set(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(f => { f.value = %s; return true })(document.getElementById(%q))`, strconv.Quote(value), id))(ctx, t)
		return err
	})
}

// until polls a JS expression until it is true (30 s at most).
func (x *explorer) until(what, expr string) {
	x.t.Helper()
	if _, err := chromedp.Run(x.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		x.t.Fatalf("browser: waiting for %s (%s): %v; console: %q; the page shows: %s", what, expr, err, x.consoleErrors(),
			x.eval(`document.querySelector("main").innerText`))
	}
}

// infoIs waits until the pager line of a view reads want.
func (x *explorer) infoIs(view, want string) {
	x.t.Helper()
	x.until(view+" shows "+want, fmt.Sprintf(`document.getElementById(%q).textContent === %q`, view+"Info", want))
}

func (x *explorer) eval(expr string) string {
	x.t.Helper()
	s, err := chromedp.Run(x.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		x.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return s
}

// rows is the text of every cell of a table's body.
func (x *explorer) rows(table string) [][]string {
	x.t.Helper()
	out, err := chromedp.Run(x.ctx, chromedp.Evaluate[[][]string](fmt.Sprintf(
		`[...document.querySelectorAll("#%s tbody tr")].map(tr => [...tr.cells].map(td => td.textContent))`, table)))
	if err != nil {
		x.t.Fatalf("browser: rows of %s: %v", table, err)
	}
	return out
}

func (x *explorer) text(sel string) string {
	x.t.Helper()
	s, err := chromedp.Run(x.ctx, chromedp.TextContent(sel))
	if err != nil {
		x.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// shot saves a PNG of the viewport as name.png in x.dir, and also at
// extra if given.
func (x *explorer) shot(name string, extra ...string) {
	x.t.Helper()
	png, err := chromedp.Run(x.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		x.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	for _, p := range append([]string{filepath.Join(x.dir, name+".png")}, extra...) {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			x.t.Fatalf("write screenshot: %v", err)
		}
		x.t.Logf("screenshot of the %s view: %s (%d bytes)", name, p, len(png))
	}
}

// safe checks that nothing the events carried ran or became markup.
func (x *explorer) safe(where string) {
	x.t.Helper()
	if got := x.eval(`String(window.__pwned) + " " + document.querySelectorAll("main img, main script").length`); got != "undefined 0" {
		x.t.Fatalf("%s: event data ran or became markup: __pwned, img/script count = %s", where, got)
	}
}

func exploreEvent(session, category, name, ts string, data string) string {
	return fmt.Sprintf(`{"session_id":%q,"category":%q,"name":%q,"data":%s,"timestamp":%q}`, session, category, name, data, ts)
}

// exploreEvents are the test's events: alice's five page interactions,
// sent out of time order, one carrying xssNote; bob's four valid form
// submits; one submit that breaks the schema (with xssNote too) and one
// from the future. Nine valid, two failed.
func exploreEvents() string {
	note, _ := json.Marshal(xssNote)
	ts := func(min int) string { return fmt.Sprintf("2021-03-01T10:%02d:00Z", min) }
	evs := []string{
		exploreEvent("alice-1", "page interaction", "pageview", ts(3), `{"path":"/d"}`),
		exploreEvent("alice-1", "page interaction", "pageview", ts(0), `{"path":"/a"}`),
		exploreEvent("alice-1", "page interaction", "cta click", ts(4), `{"path":"/e","element":"chat bubble"}`),
		exploreEvent("alice-1", "page interaction", "cta click", ts(1), `{"path":"/b"}`),
		exploreEvent("alice-1", "page interaction", "pageview", ts(2), `{"path":"/c","note":`+string(note)+`}`),
	}
	for i := range 4 {
		evs = append(evs, exploreEvent("bob-2", "form interaction", "submit", ts(10+i), fmt.Sprintf(`{"form":{"first_name":"Bob%d"}}`, i)))
	}
	evs = append(evs,
		exploreEvent("bob-2", "form interaction", "submit", ts(15), `{"form":{"first_name":42},"note":`+string(note)+`}`),
		exploreEvent("bob-2", "page interaction", "pageview", time.Now().UTC().Add(time.Hour).Format(time.RFC3339), `{"path":"/future"}`))
	return "[" + strings.Join(evs, ",") + "]"
}

// TestExplorePageInHeadlessChromium drives GET /explore in a real browser
// over a real node: each of its four views against what was ingested,
// paging with a small page size, the revalidation (refused with a read
// key, run to done with the admin key), the stats chart, and event data
// that holds markup shown as text. Screenshots of each view go to
// $THEEYE_SCREENSHOTS (else the test's temp dir); the README's picture is
// made with
//
//	THEEYE_EXPLORE_PNG=$PWD/api/docs/explore.png go test -run TestExplorePageInHeadlessChromium ./cmd/theeye
func TestExplorePageInHeadlessChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	browser := chromiumPath(t)
	n := startNode(t, t.TempDir())
	key := n.createApp("web")
	n.putSchema("form interaction", "submit", formSchemaV1)
	a := n.post(key, "application/json", []byte(exploreEvents()))
	n.get(fmt.Sprintf("/v1/events?min_seq=%d", a.Seq))

	dir := os.Getenv("THEEYE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := newBrowser(t, browser, 1200, 800, 40*time.Second)
	x := &explorer{t: t, ctx: ctx, n: n, dir: dir, read: n.readKey()}
	x.listen()

	x.do("load /explore", chromedp.EmulateViewport(1200, 800), chromedp.Navigate(n.URL+"/explore"))
	x.until("the page's script ran", `!document.getElementById("view-session").hidden`)
	x.do("type the read key", chromedp.SendKeys(chromedp.CSS(`#key`), x.read))
	x.do("use it", chromedp.Click(chromedp.CSS(`#useKey`)))
	x.until("the key is taken", `document.getElementById("keyState").textContent.startsWith("key set")`)
	if got := x.eval(`[sessionStorage.getItem("theeye-explore-key") === ` + strconv.Quote(x.read) + `, localStorage.length, document.cookie, document.getElementById("key").value].join("|")`); got != "true|0||" {
		t.Errorf("the key should be in sessionStorage only, and the field cleared: %s", got)
	}
	x.sessionView()
	x.browseView()
	x.errorsView()
	x.statsView()
	if errs := x.consoleErrors(); len(errs) > 0 {
		t.Errorf("the page's console has errors: %q", errs)
	}
}

func (x *explorer) sessionView() {
	x.do("ask for alice's session, two events a page",
		set("sessionId", "alice-1"),
		set("sessionLimit", "2"),
		chromedp.Click(chromedp.CSS(`#sessionGo`)),
	)
	var all [][]string
	for i, want := range []string{"page 1 · 2 events · more on the next page", "page 2 · 2 events · more on the next page", "page 3 · 1 event · end"} {
		if i > 0 {
			x.do("next page", chromedp.Click(chromedp.CSS(`#sessionNext`)))
		}
		x.infoIs("session", want)
		all = append(all, x.rows("sessionTable")...)
	}
	if len(all) != 5 {
		x.t.Fatalf("session: %d rows over three pages, want 5: %v", len(all), all)
	}
	for i, r := range all {
		wantTS := fmt.Sprintf("2021-03-01T10:%02d:00Z", i)
		if r[0] != strconv.Itoa(i+1) || r[1] != wantTS || r[3] != "page interaction" {
			x.t.Errorf("session row %d = %q, want #%d at %s (ordered by time)", i, r, i+1, wantTS)
		}
	}
	if all[1][4] != "cta click" || all[4][2] != "+4.0 min" || !strings.Contains(all[2][5], xssShown) {
		x.t.Errorf("session rows: %q", all)
	}
	x.do("back to page 2", chromedp.Click(chromedp.CSS(`#sessionPrev`)))
	x.infoIs("session", "page 2 · 2 events · more on the next page")
	if r := x.rows("sessionTable"); len(r) != 2 || r[0][0] != "3" || r[0][1] != "2021-03-01T10:02:00Z" {
		x.t.Errorf("session page 2 again: %q", r)
	}
	x.safe("session")
	x.do("the whole session on one page", set("sessionLimit", "100"), chromedp.Click(chromedp.CSS(`#sessionGo`)))
	x.infoIs("session", "page 1 · 5 events · end")
	x.safe("session")
	var extra []string
	if p := os.Getenv("THEEYE_EXPLORE_PNG"); p != "" {
		extra = append(extra, p)
	}
	x.shot("explore-session", extra...)
}

func (x *explorer) browseView() {
	x.do("browse page interactions, two a page",
		chromedp.Click(chromedp.CSS(`#tabs [data-view="browse"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#view-browse`)),
		set("browseCategory", "page interaction"),
		set("browseFrom", "2021-03-01T10:00:00Z"),
		set("browseTo", "2021-03-01T11:00:00Z"),
		set("browseLimit", "2"),
		chromedp.Click(chromedp.CSS(`#browseGo`)),
	)
	var seqs []string
	for i, want := range []string{"page 1 · 2 events · more on the next page", "page 2 · 2 events · more on the next page", "page 3 · 1 event · end"} {
		if i > 0 {
			x.do("next page", chromedp.Click(chromedp.CSS(`#browseNext`)))
		}
		x.infoIs("browse", want)
		for _, r := range x.rows("browseTable") {
			if r[1] != "alice-1" || r[2] != "page interaction" || r[5] != "web" {
				x.t.Errorf("browse row %q: want alice's page interactions from app web", r)
			}
			seqs = append(seqs, r[6])
		}
	}
	if slices.Sort(seqs); len(slices.Compact(seqs)) != 5 {
		x.t.Errorf("browse: seqs %v over three pages, want 5 distinct", seqs)
	}
	x.do("only the cta clicks", set("browseName", "cta click"), set("browseLimit", "100"), chromedp.Click(chromedp.CSS(`#browseGo`)))
	x.infoIs("browse", "page 1 · 2 events · end")

	// An API error is shown with the server's own message.
	_, body, _ := do(x.t, "GET", x.n.URL+"/v1/events?from=yesterday", x.read, "", nil)
	var apiErr struct {
		Error struct{ Code, Message string }
	}
	mustJSON(x.t, body, &apiErr)
	x.do("a bad time", set("browseFrom", "yesterday"), chromedp.Click(chromedp.CSS(`#browseGo`)))
	x.until("the error box", `!document.getElementById("browseError").hidden`)
	if got, want := x.text(`#browseError`), "HTTP 400 "+apiErr.Error.Code+apiErr.Error.Message; got != want {
		x.t.Errorf("browse error box %q, want %q", got, want)
	}

	x.do("everything in the hour",
		set("browseCategory", ""), set("browseName", ""),
		set("browseFrom", "2021-03-01T10:00:00Z"), chromedp.Click(chromedp.CSS(`#browseGo`)))
	x.infoIs("browse", "page 1 · 9 events · end")
	x.safe("browse")
	x.shot("explore-browse")
	x.do("open bob's session from its row", chromedp.Click(chromedp.CSS(`#browseTable tbody tr:last-child button`)))
	x.infoIs("session", "page 1 · 4 events · end")
	if r := x.rows("sessionTable"); r[3][4] != "submit" || r[3][5] != `{"form":{"first_name":"Bob3"}}` {
		x.t.Errorf("bob's session: %q", r)
	}
}

func (x *explorer) errorsView() {
	x.do("the errors",
		chromedp.Click(chromedp.CSS(`#tabs [data-view="errors"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#view-errors`)),
		chromedp.Click(chromedp.CSS(`#errorsGo`)),
	)
	x.infoIs("errors", "page 1 · 2 failed events · end")
	if total, reasons := x.text(`#errorsTotal`), x.text(`#errorsByReason`); total != "2" ||
		!strings.Contains(reasons, "schema_violation: 1") || !strings.Contains(reasons, "timestamp_in_future: 1") {
		x.t.Errorf("errors summary: total %q, by reason %q", total, reasons)
	}
	rows := x.rows("errorsTable")
	byReason := map[string][]string{}
	for _, r := range rows {
		byReason[strings.Fields(r[4])[0]] = r
	}
	if r := byReason["schema_violation"]; r == nil || r[3] != "form interaction / submit" || !strings.Contains(r[5], xssShown) {
		x.t.Errorf("the schema failure's row is missing or wrong: %q", rows)
	}
	if r := byReason["timestamp_in_future"]; r == nil || r[2] != "web" || !strings.Contains(r[5], "/future") {
		x.t.Errorf("the future event's row is missing or wrong: %q", rows)
	}
	x.safe("errors")

	x.do("revalidate with the read key", chromedp.Click(chromedp.CSS(`#revalidate`)))
	x.until("the 403", `!document.getElementById("revalError").hidden`)
	if msg := x.text(`#revalError`); !strings.HasPrefix(msg, "HTTP 403 forbidden") || !strings.Contains(msg, `does not have the "admin" scope`) ||
		!strings.Contains(msg, "needs a key with the admin scope") {
		x.t.Errorf("revalidation with a read key shows %q", msg)
	}

	// A schema that accepts any first_name: the schema failure passes now.
	x.n.putSchema("form interaction", "submit", `{"type":"object","required":["form"]}`)
	x.do("revalidate with the admin key",
		chromedp.SendKeys(chromedp.CSS(`#key`), testAdminKey), chromedp.Click(chromedp.CSS(`#useKey`)),
		chromedp.Click(chromedp.CSS(`#revalidate`)))
	x.until("the revalidation is done", `/: done · /.test(document.getElementById("revalStatus").textContent)`)
	status := x.text(`#revalStatus`)
	var id uint64
	if _, err := fmt.Sscanf(status, "revalidation %d:", &id); err != nil {
		x.t.Fatalf("revalidation status %q: %v", status, err)
	}
	var rv revalidateResp
	x.n.call("GET", fmt.Sprintf("/v1/errors/revalidate/%d", id), testAdminKey, "", nil, 200, &rv)
	want := fmt.Sprintf("revalidation %d: done · checked %d, accepted %d, still failing %d", id, rv.Checked, rv.Accepted, rv.Failing)
	if status != want || rv.Accepted != 1 || rv.Failing != 1 {
		x.t.Errorf("revalidation shows %q; the API says %+v", status, rv)
	}
	x.infoIs("errors", "page 1 · 1 failed event · end")
	if rows := x.rows("errorsTable"); len(rows) != 1 || !strings.HasPrefix(rows[0][4], "timestamp_in_future") {
		x.t.Errorf("errors after the revalidation: %q", rows)
	}
	x.safe("errors")
	x.shot("explore-errors")
}

func (x *explorer) statsView() {
	x.do("the stats by minute",
		chromedp.Click(chromedp.CSS(`#tabs [data-view="stats"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#view-stats`)),
		set("statsFrom", "2021-03-01T10:00:00Z"),
		set("statsTo", "2021-03-01T10:30:00Z"),
		set("statsInterval", "1m"),
		chromedp.Click(chromedp.CSS(`#statsGo`)),
	)
	// Nine valid events, and the submit the revalidation accepted.
	x.until("the chart", `document.getElementById("statsTotal").textContent === "10 events"`)
	var st struct {
		Buckets []struct {
			Total  int `json:"total"`
			ByType []struct {
				Count int `json:"count"`
			} `json:"by_type"`
		} `json:"buckets"`
	}
	x.n.call("GET", "/v1/stats?interval=1m&from=2021-03-01T10:00:00Z&to=2021-03-01T10:30:00Z", x.read, "", nil, 200, &st)
	total, bars := 0, 0
	for _, b := range st.Buckets {
		total += b.Total
		bars += len(b.ByType)
	}
	if total != 10 || len(st.Buckets) != 30 {
		x.t.Fatalf("the API counts %d events in %d buckets, want 10 in 30", total, len(st.Buckets))
	}
	if got := x.eval(`String(document.querySelectorAll("#statsChart svg rect.bar").length)`); got != strconv.Itoa(bars) {
		x.t.Errorf("chart has %s bars, want one per bucket and type: %d", got, bars)
	}
	if info := x.text(`#statsInfo`); !strings.HasPrefix(info, "in 30 buckets of 1m") {
		x.t.Errorf("stats info %q", info)
	}
	types := x.rows("statsTypes")
	want := [][]string{
		{"form interaction", "submit", "5", "50.0 %"},
		{"page interaction", "pageview", "3", "30.0 %"},
		{"page interaction", "cta click", "2", "20.0 %"},
	}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		x.t.Errorf("totals by type %q, want %q", types, want)
	}
	x.safe("stats")
	x.shot("explore-stats")
}
