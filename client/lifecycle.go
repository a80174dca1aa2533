package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/theeye/theeye"
)

// What Deletion.Status says.
const (
	DeletionPending = "pending" // not (yet) finished on the node asked
	DeletionDone    = "done"    // finished there: nothing of the events is left on that node
)

// Deletion is an erasure of a session's events (DELETE
// /v1/sessions/{id}), as the node asked sees it.
type Deletion struct {
	ID        string `json:"id"` // "del_<n>"
	SessionID string `json:"session_id"`
	// AtSeq is the last seq the erasure covers: the session's events
	// logged after it are kept.
	AtSeq  uint64 `json:"at_seq"`
	Status string `json:"status"` // DeletionPending or DeletionDone
	// EventsDeleted counts the session's events the node found to erase
	// (0 in the answer of EraseSession).
	EventsDeleted uint64    `json:"events_deleted"`
	RequestedAt   time.Time `json:"requested_at,omitzero"`
	DoneAt        time.Time `json:"done_at,omitzero"`
}

// Done reports whether the erasure has finished on the node asked.
func (d Deletion) Done() bool { return d.Status == DeletionDone }

// EraseSession asks the cluster (admin key) to erase every event of the
// session logged so far, on every node; it answers once the request is
// committed, with the deletion pending. Follow it with Deletion (the
// node the client talks to) or DeletionOn (each node of ClusterStatus).
// It is not sent again after a lost answer (a second erasure would cover
// events logged since), only after a refused dial, 429 or 503.
func (c *Client) EraseSession(ctx context.Context, sessionID string) (Deletion, error) {
	if sessionID == "" {
		return Deletion{}, errors.New("erase session: empty session id")
	}
	if strings.Contains(sessionID, "/") {
		return Deletion{}, fmt.Errorf("erase session %q: the id holds a '/', which the route cannot carry", sessionID)
	}
	var d Deletion
	if err := c.sendJSON(ctx, http.MethodDelete, "/v1/sessions/"+url.PathEscape(sessionID), false, nil, &d); err != nil {
		return Deletion{}, fmt.Errorf("erase session %q: %w", sessionID, err)
	}
	return d, nil
}

// Deletion returns how far the deletion id got on the node the client
// talks to. A node that has not applied the request yet answers an
// *Error with code "not_found".
func (c *Client) Deletion(ctx context.Context, id string) (Deletion, error) {
	return c.DeletionOn(ctx, "", id)
}

// DeletionOn is Deletion asked of one node, by its base URL (the
// HTTPAddr of a Node of ClusterStatus), without failing over to another:
// each node erases on its own, and says so only of itself. server ""
// means the servers of the client's Config.
func (c *Client) DeletionOn(ctx context.Context, server, id string) (Deletion, error) {
	if id == "" || strings.Contains(id, "/") {
		return Deletion{}, fmt.Errorf("deletion %q: want the id EraseSession returned (del_<n>)", id)
	}
	req := &request{method: http.MethodGet, path: "/v1/deletions/" + url.PathEscape(id), idempotent: true}
	if server != "" {
		s, err := normalizeServer(server)
		if err != nil {
			return Deletion{}, fmt.Errorf("deletion %s: %w", id, err)
		}
		req.server = s
	}
	var d Deletion
	if err := c.doJSON(ctx, req, &d); err != nil {
		return Deletion{}, fmt.Errorf("deletion %s: %w", id, err)
	}
	return d, nil
}

// ClusterConfig is the cluster's replicated validation and retention
// policy (GET /v1/config). Not to be confused with Config, the client's
// own settings.
type ClusterConfig = theeye.ClusterConfig

// ConfigPatch changes some fields of the ClusterConfig: nil fields keep
// their value.
type ConfigPatch = theeye.ConfigPatch

// ClusterConfig returns the cluster config in force, as the node asked
// has applied it (admin key).
func (c *Client) ClusterConfig(ctx context.Context) (ClusterConfig, error) {
	var cc ClusterConfig
	if _, err := c.getJSON(ctx, "/v1/config", nil, &cc); err != nil {
		return ClusterConfig{}, fmt.Errorf("cluster config: %w", err)
	}
	return cc, nil
}

// PutClusterConfig changes the fields p sets, on every node (admin key),
// and returns the whole new config. The change judges the events logged
// after it. A value the server refuses is an *Error with status 400 whose
// Message and Details["field"] name the field.
func (c *Client) PutClusterConfig(ctx context.Context, p ConfigPatch) (ClusterConfig, error) {
	if p.Empty() {
		return ClusterConfig{}, errors.New("put cluster config: the patch changes nothing")
	}
	var cc ClusterConfig
	// Idempotent: the same patch applied twice is the same config.
	if err := c.sendJSON(ctx, http.MethodPut, "/v1/config", true, p, &cc); err != nil {
		return ClusterConfig{}, fmt.Errorf("put cluster config: %w", err)
	}
	return cc, nil
}
