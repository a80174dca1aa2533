package api

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openapiJSON is the OpenAPI 3.1 document of API.md, served as is.
//
//go:embed openapi.json
var openapiJSON []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
}

const indexPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The Eye</title></head>
<body style="font-family: sans-serif; max-width: 50em; margin: 2em auto">
<h1>The Eye</h1>
<p>An event store for user-behaviour events. This node serves the HTTP API v1.</p>
<ul>
<li><a href="/openapi.json">/openapi.json</a>: the API contract (OpenAPI 3.1)</li>
<li><a href="/readyz">/readyz</a>, <a href="/healthz">/healthz</a>, <a href="/metrics">/metrics</a></li>
</ul>
<p>Quick start: <code>curl -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d @events.json http://HOST/v1/events</code></p>
</body></html>
`

func (s *Server) handleIndexPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(indexPage))
}
