package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// What EventStatus.Status says.
const (
	StatusPending   = "pending"   // acknowledged, not indexed yet by the node asked
	StatusIndexed   = "indexed"   // valid and queryable
	StatusFailed    = "failed"    // stored, failed validation: Reasons say why
	StatusDuplicate = "duplicate" // (StatusAt only) a byte-identical retry, not indexed again
)

// EventStatus is where an event sent with a client id stands on the node
// asked (GET /v1/events/{id}/status).
type EventStatus struct {
	ID      string   `json:"id"`
	App     string   `json:"app"`
	Seq     uint64   `json:"seq"`    // the event the status is of
	Status  string   `json:"status"` // StatusPending, StatusIndexed, StatusFailed or StatusDuplicate
	Reasons []Reason `json:"reasons"`
	// DuplicateOf is, for StatusDuplicate, the seq of the event that owns
	// the id.
	DuplicateOf uint64 `json:"duplicate_of,omitempty"`
}

// Status returns the status of the event app sent with the id id: the
// first event of app logged with it (a byte-identical retry is the same
// event). app may be "" with an ingest key (its own app); a read key must
// name it. An id the node does not hold is an *Error with code
// "not_found".
func (c *Client) Status(ctx context.Context, app, id string) (EventStatus, error) {
	return c.StatusAt(ctx, app, id, 0)
}

// StatusAt is Status of the copy logged at seq (0: the id's owner, as
// Status): StatusDuplicate when it is a byte-identical retry of an event
// already indexed, StatusFailed (duplicate_id_conflict) when it reused the
// id for other bytes.
func (c *Client) StatusAt(ctx context.Context, app, id string, seq uint64) (EventStatus, error) {
	if id == "" {
		return EventStatus{}, errors.New("status: empty id")
	}
	if strings.Contains(id, "/") {
		return EventStatus{}, fmt.Errorf("status: id %q holds a '/', which the route cannot carry", id)
	}
	v := url.Values{}
	set(v, "app", app)
	if seq > 0 {
		v.Set("seq", strconv.FormatUint(seq, 10))
	}
	var st EventStatus
	if _, err := c.getJSON(ctx, "/v1/events/"+url.PathEscape(id)+"/status", v, &st); err != nil {
		return EventStatus{}, fmt.Errorf("status of %q: %w", id, err)
	}
	return st, nil
}
