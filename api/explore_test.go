package api

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestExplorePageIsSelfContained checks what GET /explore promises without
// a browser (cmd/theeye's TestExplorePageInHeadlessChromium drives it): no
// key needed, a CSP that names the page's own script and style by hash
// and allows nothing inline besides, nothing fetched from another host,
// the key kept out of localStorage and cookies, and data never put in as
// markup.
func TestExplorePageIsSelfContained(t *testing.T) {
	s := New(Config{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/explore", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /explore without a key: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	page, csp := rec.Body.String(), rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	for _, tag := range []string{"script", "style"} {
		blocks := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(page, -1)
		if len(blocks) != 1 {
			t.Fatalf("%d <%s> blocks, want 1", len(blocks), tag)
		}
		sum := sha256.Sum256([]byte(blocks[0][1]))
		if want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d script tags, want the one inline block", n)
	}
	// The one URL allowed is the SVG namespace, which is a name, not a fetch.
	for _, m := range regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindAllString(page, -1) {
		if m != "http://www.w3.org" {
			t.Errorf("the page names another host: %q", m)
		}
	}
	for _, banned := range []string{"localStorage", "document.cookie", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "@import", "url("} {
		if strings.Contains(page, banned) {
			t.Errorf("the page uses %q", banned)
		}
	}
	if !strings.Contains(page, "sessionStorage") {
		t.Errorf("the key is not kept in sessionStorage")
	}
	for _, route := range []string{"/v1/sessions/", "/v1/events", "/v1/errors/summary", "/v1/errors/revalidate", "/v1/stats"} {
		if !strings.Contains(page, `"`+route) {
			t.Errorf("the page never calls %s", route)
		}
	}
	if !strings.Contains(string(docsPage), `href="/explore"`) {
		t.Errorf("the docs page does not link /explore")
	}
}

// TestDocsPagePolicy: the docs page at "/" gets the same kind of policy,
// its own inline blocks by hash and nothing unsafe.
func TestDocsPagePolicy(t *testing.T) {
	s := New(Config{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d", rec.Code)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q: want default-src 'none' and nothing unsafe", csp)
	}
	m := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no inline script on the docs page")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
		t.Errorf("CSP %q lacks %q", csp, want)
	}
}
