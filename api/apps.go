package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
)

// Names of apps and keys: what fits in a URL path segment and a log line.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// checkName refuses an app or key name that does not match nameRE.
func checkName(name string) error {
	if nameRE.MatchString(name) {
		return nil
	}
	return theeye.Errorf(theeye.EInvalidRequest,
		"name %q: want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", name).WithDetail("field", "name")
}

// decodeBody reads a small admin JSON body strictly: unknown fields and
// trailing data are errors that name what was wrong.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return theeye.Errorf(theeye.EInvalidRequest, "field %q must be a %s", ute.Field, ute.Type).WithDetail("field", ute.Field)
		}
		return theeye.Errorf(theeye.EInvalidRequest, "the body is not the JSON object this route takes: %v", err)
	}
	if dec.More() {
		return theeye.Errorf(theeye.EInvalidRequest, "the body has data after the JSON object")
	}
	return nil
}

type keyJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name,omitempty"`
	App       string            `json:"app,omitempty"`
	Secret    string            `json:"secret,omitempty"`
	Scopes    []theeye.Scope    `json:"scopes"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	Revoked   bool              `json:"revoked,omitempty"`
	RateLimit *theeye.RateLimit `json:"rate_limit,omitempty"`
}

// checkRateLimit normalises and checks a rate limit given in a body (nil:
// none).
func checkRateLimit(rl *theeye.RateLimit) (*theeye.RateLimit, error) {
	if rl == nil {
		return nil, nil
	}
	n := rl.Normalized()
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return &n, nil
}

// newKey makes a key with a fresh id and secret; only its hash is kept.
func newKey(name, app string, scopes []theeye.Scope, now time.Time) (theeye.Key, string) {
	var idb [8]byte
	var sec [32]byte
	rand.Read(idb[:])
	rand.Read(sec[:])
	secret := "eye_" + base64.RawURLEncoding.EncodeToString(sec[:])
	k := theeye.Key{ID: "key_" + hex.EncodeToString(idb[:]), Name: name, App: app, Scopes: scopes,
		Hash: theeye.HashSecret(secret), CreatedAt: now.UTC()}
	return k, secret
}

func (s *Server) handleCreateApp(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	var req struct {
		Name      string            `json:"name"`
		RateLimit *theeye.RateLimit `json:"rate_limit"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkName(req.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	rl, err := checkRateLimit(req.RateLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	app := theeye.App{ID: req.Name, Name: req.Name, CreatedAt: now}
	key, secret := newKey(req.Name, req.Name, []theeye.Scope{theeye.ScopeIngest}, now)
	key.RateLimit = rl
	if err := s.cfg.Node.CreateApp(r.Context(), app, key); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": app.ID, "name": app.Name, "created_at": app.CreatedAt,
		"key": keyJSON{ID: key.ID, Secret: secret, Scopes: key.Scopes, RateLimit: key.RateLimit},
	})
}

func (s *Server) handleListApps(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	apps := s.cfg.Node.Apps()
	if apps == nil {
		apps = []theeye.App{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	var req struct {
		Name      string            `json:"name"`
		Scopes    []theeye.Scope    `json:"scopes"`
		App       string            `json:"app"`
		RateLimit *theeye.RateLimit `json:"rate_limit"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkName(req.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.Scopes) == 0 {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "scopes: give at least one of ingest, read, admin").WithDetail("field", "scopes"))
		return
	}
	for i, sc := range req.Scopes {
		if !theeye.ValidScope(sc) {
			s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "scopes[%d] %q: want ingest, read or admin", i, sc).WithDetail("field", "scopes"))
			return
		}
	}
	slices.Sort(req.Scopes)
	req.Scopes = slices.Compact(req.Scopes)
	rl, err := checkRateLimit(req.RateLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	key, secret := newKey(req.Name, req.App, req.Scopes, now)
	key.RateLimit = rl
	if err := s.cfg.Node.CreateKey(r.Context(), key); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, keyJSON{ID: key.ID, Name: key.Name, App: key.App, Secret: secret, Scopes: key.Scopes, CreatedAt: &now, RateLimit: key.RateLimit})
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	keys := s.cfg.Node.Keys()
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyJSON{ID: k.ID, Name: k.Name, App: k.App, Scopes: k.Scopes, CreatedAt: &k.CreatedAt, Revoked: k.Revoked, RateLimit: k.RateLimit})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	id := ps.ByName("key_id")
	if err := s.cfg.Node.RevokeKey(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "revoked": true})
}

// handlePatchKey is PATCH /v1/keys/{key_id}: {"rate_limit": {...}} sets the
// key's rate limit on every node, {"rate_limit": null} clears it.
func (s *Server) handlePatchKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	var req struct {
		RateLimit json.RawMessage `json:"rate_limit"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.RateLimit == nil {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "give rate_limit: an object, or null to clear it").WithDetail("field", "rate_limit"))
		return
	}
	var rl *theeye.RateLimit
	if string(req.RateLimit) != "null" {
		var v theeye.RateLimit
		dec := json.NewDecoder(bytes.NewReader(req.RateLimit))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "rate_limit: want {\"events_per_second\": N, \"burst\": M}: %v", err).WithDetail("field", "rate_limit"))
			return
		}
		var err error
		if rl, err = checkRateLimit(&v); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	id := ps.ByName("key_id")
	if err := s.cfg.Node.SetRateLimit(r.Context(), id, rl); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "rate_limit": rl})
}
