package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium; .ci/run installs it. Outside CI a
// machine without it skips the browser test.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on a CI machine: .ci/run should have installed it")
	}
	t.Skip("no chromium installed (apt-get install chromium)")
	return ""
}

// newBrowser starts a headless Chromium of the given window size for one
// test, with a deadline; the test's cleanup closes it.
func newBrowser(t *testing.T, path string, width, height int, timeout time.Duration) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(width, height))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancel(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestDocsPageInHeadlessChromium loads GET / in a real browser: the quick
// start with the brief's examples, the API reference rendered from
// /openapi.json, the live view of the node, and the recent errors once a
// read key is given.
func TestDocsPageInHeadlessChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	browser := chromiumPath(t)
	n := startNode(t, t.TempDir())
	key := n.createApp("web")
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	a := n.post(key, "application/json", []byte("["+exPageview+","+exCTA+`,{"session_id":"s","category":"c","name":"n","data":{"a":1},"timestamp":"`+future+`"}]`))
	n.get(fmt.Sprintf("/v1/events?min_seq=%d", a.Seq))

	ctx := newBrowser(t, browser, 1280, 1600, 90*time.Second)

	err := chromedp.Do(ctx,
		chromedp.Navigate(n.URL+"/"),
		chromedp.WaitVisible(`#ops .op`),
	)
	if err != nil {
		t.Fatalf("browser: load the page: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}
	quick, reference := text(`#quickstart`), text(`#ops`)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`document.getElementById("applied").textContent === "%d"`, a.Seq),
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("browser: the live view never showed applied seq %d: %v", a.Seq, err)
	}
	applied, leader, members := text(`#applied`), text(`#leader`), text(`#members`)
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#key`, testAdminKey),
		chromedp.Click(`#showErrors`),
		chromedp.WaitVisible(`#errors tbody tr`),
	)
	if err != nil {
		t.Fatalf("browser: show recent errors: %v", err)
	}
	errs := text(`#errors`)
	for _, want := range []string{"e2085be5-9137-4e4e-80b5-f1ffddc25423", "form interaction", "/v1/apps"} {
		if !strings.Contains(quick, want) {
			t.Errorf("quick start lacks %q", want)
		}
	}
	for _, want := range []string{"/v1/sessions/{session_id}/events", "/v1/errors/revalidate", "/v1/schemas", "min_seq"} {
		if !strings.Contains(reference, want) {
			t.Errorf("API reference lacks %q", want)
		}
	}
	if applied != fmt.Sprint(a.Seq) || leader != "n1" || !strings.Contains(members, "n1") {
		t.Errorf("live view: applied %q leader %q members %q", applied, leader, members)
	}
	if !strings.Contains(errs, "timestamp_in_future") {
		t.Errorf("recent errors: %q", errs)
	}
	if dir := os.Getenv("THEEYE_SCREENSHOT_DIR"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
			os.WriteFile(dir+"/docs.jpg", png, 0o644)
		}
	}
}
