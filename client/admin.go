package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/theeye/theeye"
)

// Scope is what a key may do: ScopeIngest, ScopeRead or ScopeAdmin (which
// implies the others).
type Scope = theeye.Scope

// The scopes of API.md.
const (
	ScopeIngest = theeye.ScopeIngest
	ScopeRead   = theeye.ScopeRead
	ScopeAdmin  = theeye.ScopeAdmin
)

// App is an application: a trusted client that sends events.
type App = theeye.App

// Key is an API key, without its secret.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	App       string    `json:"app,omitempty"` // the app events sent with it belong to
	Scopes    []Scope   `json:"scopes"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// NewKey is a key just created, with its secret: the only time the server
// shows it.
type NewKey struct {
	Key
	Secret string `json:"secret"`
}

// CreateApp registers an application and returns it with its ingest key.
// A name already taken is an *Error with status 409.
func (c *Client) CreateApp(ctx context.Context, name string) (App, NewKey, error) {
	var resp struct {
		App
		Key NewKey `json:"key"`
	}
	// Not idempotent: a retry after a lost answer would meet 409.
	if err := c.sendJSON(ctx, http.MethodPost, "/v1/apps", false, map[string]string{"name": name}, &resp); err != nil {
		return App{}, NewKey{}, fmt.Errorf("create app %q: %w", name, err)
	}
	k := resp.Key
	if k.Name == "" {
		k.Name = resp.App.Name
	}
	if k.App == "" {
		k.App = resp.App.ID
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = resp.App.CreatedAt
	}
	return resp.App, k, nil
}

// ListApps returns every application.
func (c *Client) ListApps(ctx context.Context) ([]App, error) {
	var resp struct {
		Apps []App `json:"apps"`
	}
	if _, err := c.getJSON(ctx, "/v1/apps", nil, &resp); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return resp.Apps, nil
}

// CreateKey creates a key with the given scopes; app (optional) is the app
// that events sent with it belong to.
func (c *Client) CreateKey(ctx context.Context, name string, scopes []Scope, app string) (NewKey, error) {
	req := struct {
		Name   string  `json:"name"`
		Scopes []Scope `json:"scopes"`
		App    string  `json:"app,omitempty"`
	}{name, scopes, app}
	var k NewKey
	if err := c.sendJSON(ctx, http.MethodPost, "/v1/keys", false, req, &k); err != nil {
		return NewKey{}, fmt.Errorf("create key %q: %w", name, err)
	}
	return k, nil
}

// ListKeys returns every key, revoked ones included, without secrets.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var resp struct {
		Keys []Key `json:"keys"`
	}
	if _, err := c.getJSON(ctx, "/v1/keys", nil, &resp); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return resp.Keys, nil
}

// RevokeKey revokes a key by id; every node refuses it once committed.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("revoke key: empty id")
	}
	if err := c.sendJSON(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), true, nil, nil); err != nil {
		return fmt.Errorf("revoke key %q: %w", id, err)
	}
	return nil
}

// Cluster is a node's view of the cluster.
type Cluster struct {
	Leader string `json:"leader"` // id of the leader, "" when unknown
	Nodes  []Node `json:"nodes"`
}

// Node is one member of the cluster.
type Node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Suffrage string `json:"suffrage"` // "voter" or "nonvoter"
	State    string `json:"state"`    // "leader", "follower", ...
	// AppliedSeq and IndexedSeq are nil when the answering node does not
	// know them (other members, for now).
	AppliedSeq *uint64 `json:"applied_seq"`
	IndexedSeq *uint64 `json:"indexed_seq"`
}

// NodeSpec names a node to add.
type NodeSpec struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// ClusterStatus returns the answering node's view of the membership.
func (c *Client) ClusterStatus(ctx context.Context) (Cluster, error) {
	var cl Cluster
	if _, err := c.getJSON(ctx, "/v1/cluster", nil, &cl); err != nil {
		return Cluster{}, fmt.Errorf("cluster status: %w", err)
	}
	return cl, nil
}

// AddNode adds a voter to the cluster (any node forwards to the leader).
func (c *Client) AddNode(ctx context.Context, n NodeSpec) error {
	if err := c.sendJSON(ctx, http.MethodPost, "/v1/cluster/nodes", true, n, nil); err != nil {
		return fmt.Errorf("add node %q: %w", n.ID, err)
	}
	return nil
}

// RemoveNode removes a node from the cluster.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("remove node: empty id")
	}
	if err := c.sendJSON(ctx, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), true, nil, nil); err != nil {
		return fmt.Errorf("remove node %q: %w", id, err)
	}
	return nil
}

// Schema is a JSON Schema (2020-12) registered for an event type.
type Schema struct {
	Category  string          `json:"category"`
	Name      string          `json:"name"`
	Version   int             `json:"version"`
	Schema    json.RawMessage `json:"schema,omitempty"`
	CreatedAt time.Time       `json:"created_at,omitzero"`
}

// PutSchema registers a new version of the schema of category + name. A
// schema that does not compile is an *Error with status 400 and the
// compiler's message.
func (c *Client) PutSchema(ctx context.Context, category, name string, schema json.RawMessage) (Schema, error) {
	if !json.Valid(schema) {
		return Schema{}, fmt.Errorf("put schema %q/%q: the schema is not valid JSON", category, name)
	}
	req := Schema{Category: category, Name: name, Schema: schema}
	var s Schema
	if err := c.sendJSON(ctx, http.MethodPost, "/v1/schemas", false, req, &s); err != nil {
		return Schema{}, fmt.Errorf("put schema %q/%q: %w", category, name, err)
	}
	return s, nil
}

// ListSchemas returns the latest version of every schema or, with category
// and name set, every version of that one.
func (c *Client) ListSchemas(ctx context.Context, category, name string) ([]Schema, error) {
	v := url.Values{}
	set(v, "category", category)
	set(v, "name", name)
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/schemas", query: v, idempotent: true})
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	// {"schemas": [...]}, or a bare array.
	var out []Schema
	body := bytes.TrimSpace(resp.body)
	if len(body) > 0 && body[0] == '[' {
		err = json.Unmarshal(body, &out)
	} else {
		var wrap struct {
			Schemas []Schema `json:"schemas"`
		}
		err = json.Unmarshal(body, &wrap)
		out = wrap.Schemas
	}
	if err != nil {
		return nil, fmt.Errorf("decode answer of GET /v1/schemas: %w", err)
	}
	return out, nil
}

// RevalidateRequest selects the stored failures a revalidation judges
// again (zero fields: no filter). From and To bound received_at.
type RevalidateRequest struct {
	From     time.Time `json:"-"`
	To       time.Time `json:"-"`
	Reason   string    `json:"reason,omitempty"`
	Category string    `json:"category,omitempty"`
	Name     string    `json:"name,omitempty"`
}

// Revalidation is what a revalidation request has done on the node asked:
// Status is pending (not started there), running or done.
type Revalidation struct {
	ID       uint64 `json:"id"`
	AtSeq    uint64 `json:"at_seq"`
	Status   string `json:"status"`
	Checked  uint64 `json:"checked"`
	Accepted uint64 `json:"accepted"`
	Failing  uint64 `json:"failing"`
}

// Done reports whether the revalidation has finished on that node.
func (r Revalidation) Done() bool { return r.Status == "done" }

// Revalidate asks the cluster to judge stored failures again against the
// rules of today; every node runs it at the same position of its log. It
// returns once the node asked has finished it or after the server's own
// wait (then Status is pending or running: follow it with Revalidation).
func (c *Client) Revalidate(ctx context.Context, r RevalidateRequest) (Revalidation, error) {
	body := struct {
		RevalidateRequest
		From string `json:"from,omitempty"`
		To   string `json:"to,omitempty"`
	}{RevalidateRequest: r}
	if !r.From.IsZero() {
		body.From = r.From.UTC().Format(time.RFC3339Nano)
	}
	if !r.To.IsZero() {
		body.To = r.To.UTC().Format(time.RFC3339Nano)
	}
	var out Revalidation
	if err := c.sendJSON(ctx, http.MethodPost, "/v1/errors/revalidate", false, body, &out); err != nil {
		return Revalidation{}, fmt.Errorf("revalidate: %w", err)
	}
	return out, nil
}

// RevalidationStatus returns how far revalidation id got on the node asked.
func (c *Client) RevalidationStatus(ctx context.Context, id uint64) (Revalidation, error) {
	var out Revalidation
	if _, err := c.getJSON(ctx, "/v1/errors/revalidate/"+strconv.FormatUint(id, 10), nil, &out); err != nil {
		return Revalidation{}, fmt.Errorf("revalidation %d: %w", id, err)
	}
	return out, nil
}
