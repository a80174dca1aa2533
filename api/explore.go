package api

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// explorePage is GET /explore, the analysts' page: a session's timeline, a
// category and time browser, the errors with a revalidation, a stats
// chart. One file (HTML, its script, its style) that asks nothing of any
// host but this node; the key is typed into it and kept in the tab.
//
//go:embed docs/explore.html
var explorePage []byte

// inlinePolicy is the Content-Security-Policy of a self-contained page:
// nothing from anywhere (default-src 'none'), API calls to this node only,
// and, of scripts and styles, only the page's own inline blocks, named by
// their SHA-256. No 'unsafe-inline': markup that slipped into the page
// from event data could not run a handler or a script even if it got
// there, and the page never puts data in as markup to begin with.
func inlinePolicy(page []byte) string {
	hashes := func(tag string) string {
		re := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`)
		srcs := []string{}
		for _, m := range re.FindAllSubmatch(page, -1) {
			sum := sha256.Sum256(m[1])
			srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
		if len(srcs) == 0 {
			return "'none'"
		}
		return strings.Join(srcs, " ")
	}
	return "default-src 'none'; script-src " + hashes("script") + "; style-src " + hashes("style") +
		"; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// handleExplorePage serves the page. It needs no key: it holds no data,
// and every call it makes carries the key the analyst types into it.
func (s *Server) handleExplorePage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.explorePolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.Write(explorePage)
}
