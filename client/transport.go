package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// request is one API call, sent by do with retries and failover.
type request struct {
	method string
	path   string // escaped, from the root: "/v1/events"
	query  url.Values
	body   []byte
	// contentType of body; "" when there is none.
	contentType string
	gzip        bool
	accept      string
	// idempotent requests may be sent again after any network error. Others
	// only after errors that prove the request never left (a refused dial),
	// or a 429/503 the server answered without acting.
	idempotent bool
	// extraTimeout is added to the per-attempt timeout (a min_seq wait).
	extraTimeout time.Duration
	// stream, when set, reads a 2xx answer's body instead of do: for an
	// answer too big to hold (a backup). RequestTimeout then bounds the
	// wait for the headers and each read of the body, not the attempt. Its
	// error is final: bytes may have been handed on, so it is not retried.
	stream func(resp *http.Response, body io.Reader) error
	// server, when set, is the one base URL to send to (no failover): for
	// what one node says of itself (a deletion's progress there).
	server string
}

// response is a successful (2xx) answer.
type response struct {
	status int
	header http.Header
	body   []byte
	server string
}

// maxRetryAfter caps the Retry-After honoured, against a broken server
// asking for hours.
const maxRetryAfter = 5 * time.Minute

// maxResponse bounds what one response may hold (10,000 events of 64 KiB
// each is 640 MiB; a page that big is the caller's doing, not ours).
const maxResponse = 1 << 30

// do sends req to the preferred server, retrying retryable failures with
// exponential backoff and jitter, and failing over to the next server on
// network errors and 502/503/504. A non-retryable answer comes back as an
// *Error at once; exhausted retries return the last error, wrapped.
func (c *Client) do(ctx context.Context, req *request) (*response, error) {
	body := req.body
	if req.gzip && len(body) > 0 {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(body) // writes to a bytes.Buffer do not fail
		zw.Close()
		body = zb.Bytes()
	}
	servers := c.servers
	if req.server != "" {
		servers = []string{req.server}
	}
	n := len(servers)
	si := int(c.preferred.Load()) % n
	triedThisRound := 1 // servers tried since the last backoff, this one included
	round := 0
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("%w; last attempt: %w", err, lastErr)
			}
			return nil, err
		}
		server := servers[si]
		resp, err := c.attempt(ctx, server, req, body)
		if err == nil {
			if req.server == "" {
				c.preferred.Store(int32(si))
			}
			return resp, nil
		}
		lastErr = plainError(err)
		if ctx.Err() != nil {
			continue // reported at the top of the loop
		}
		retry, failover, retryAfter := c.classify(req, err)
		err = plainError(err)
		c.countThrottle(err)
		if !retry {
			return nil, err
		}
		if c.cfg.MaxRetries < 0 || attempt >= c.cfg.MaxRetries {
			return nil, fmt.Errorf("%s %s: giving up after %d attempts: %w", req.method, req.path, attempt+1, err)
		}
		var delay time.Duration
		next := si
		if failover {
			next = (si + 1) % n
		}
		if next != si && triedThisRound < n {
			triedThisRound++ // a server not tried yet this round: go at once
		} else {
			// Every server failed this round (or this one asked us to slow
			// down): back off, and honour the server's Retry-After.
			delay = max(c.backoff(round), retryAfter)
			round++
			triedThisRound = 1
		}
		if next != si {
			c.log.Info("failing over", "from", server, "to", servers[next], "err", err)
			si = next
		}
		c.retried.Add(1)
		c.log.Debug("retrying", "method", req.method, "path", req.path, "server", servers[si],
			"attempt", attempt+1, "delay", delay, "err", err)
		_ = sleepCtx(ctx, delay) // a done ctx ends the next attempt
	}
}

// attempt sends req once to server.
func (c *Client) attempt(ctx context.Context, server string, req *request, body []byte) (*response, error) {
	c.requests.Add(1)
	if req.stream != nil {
		return c.attemptStream(ctx, server, req, body)
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout+req.extraTimeout)
	defer cancel()
	hresp, u, err := c.sendOnce(actx, server, req, body)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("read response of %s %s: %w", req.method, u, err)
	}
	if hresp.StatusCode >= 200 && hresp.StatusCode < 300 {
		return &response{status: hresp.StatusCode, header: hresp.Header, body: b, server: server}, nil
	}
	return nil, &statusError{err: parseError(hresp.StatusCode, b, server), retryAfter: parseRetryAfter(hresp.Header.Get("Retry-After"), time.Now())}
}

// sendOnce builds req for server and sends it; the caller closes the body.
func (c *Client) sendOnce(ctx context.Context, server string, req *request, body []byte) (*http.Response, string, error) {
	u := server + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, rd)
	if err != nil {
		return nil, u, fmt.Errorf("build request %s %s: %w", req.method, u, err)
	}
	if c.cfg.Key != "" {
		hr.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	}
	hr.Header.Set("User-Agent", c.cfg.UserAgent)
	accept := req.accept
	if accept == "" {
		accept = "application/json"
	}
	hr.Header.Set("Accept", accept)
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	if req.gzip && body != nil {
		hr.Header.Set("Content-Encoding", "gzip")
	}
	hresp, err := c.http.Do(hr)
	if err != nil {
		return nil, u, err // a *url.Error naming the method and URL
	}
	return hresp, u, nil
}

// attemptStream sends a stream request once to server. RequestTimeout
// bounds the wait for the answer's headers, then each read of its body: a
// stream as long as it needs to be, as long as it moves.
func (c *Client) attemptStream(ctx context.Context, server string, req *request, body []byte) (*response, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := &idleReader{cancel: cancel, timeout: c.cfg.RequestTimeout}
	idle.timer = time.AfterFunc(idle.timeout, idle.expire)
	defer idle.timer.Stop()
	hresp, u, err := c.sendOnce(actx, server, req, body)
	if err != nil {
		return nil, idle.explain(err)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode < 200 || hresp.StatusCode >= 300 {
		b, err := io.ReadAll(io.LimitReader(hresp.Body, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("read response of %s %s: %w", req.method, u, idle.explain(err))
		}
		return nil, &statusError{err: parseError(hresp.StatusCode, b, server), retryAfter: parseRetryAfter(hresp.Header.Get("Retry-After"), time.Now())}
	}
	idle.r = hresp.Body
	idle.timer.Reset(idle.timeout)
	if err := req.stream(hresp, idle); err != nil {
		return nil, &streamError{err: idle.explain(err)}
	}
	return &response{status: hresp.StatusCode, header: hresp.Header, server: server}, nil
}

// idleReader cancels a stream that has sent nothing for timeout.
type idleReader struct {
	r       io.Reader
	cancel  context.CancelFunc
	timeout time.Duration
	timer   *time.Timer
	expired atomic.Bool
}

func (ir *idleReader) expire() {
	ir.expired.Store(true)
	ir.cancel()
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.timeout)
	}
	return n, err
}

// explain says so when err comes from the timer having cancelled the
// stream.
func (ir *idleReader) explain(err error) error {
	if err != nil && ir.expired.Load() {
		return fmt.Errorf("the server sent nothing for %s: %w", ir.timeout, err)
	}
	return err
}

// streamError is a stream request that failed while its body was read:
// final, since bytes may have been handed on.
type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// statusError carries a server's refusal and its Retry-After between
// attempt and classify; do returns the *Error inside.
type statusError struct {
	err        *Error
	retryAfter time.Duration
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// plainError returns the *Error inside a statusError, else err.
func plainError(err error) error {
	if se, ok := err.(*statusError); ok {
		return se.err
	}
	return err
}

// countThrottle counts the answers with which the cluster asks to slow
// down.
func (c *Client) countThrottle(err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	switch e.Code {
	case "rate_limited":
		c.rateLimited.Add(1)
	case "overloaded":
		c.overloaded.Add(1)
	case "insufficient_storage":
		c.storageFull.Add(1)
	}
}

// classify says whether err is worth another attempt, on another server,
// and after at least how long.
func (c *Client) classify(req *request, err error) (retry, failover bool, retryAfter time.Duration) {
	if se, ok := err.(*statusError); ok {
		if !retryableStatus(se.err.Status) {
			return false, false, 0
		}
		// 429 (the key's rate limit, or the cluster overloaded) and 507 (the
		// cluster short of disk) are the cluster's answer, not one node's:
		// another node would say the same, so wait, on the same server.
		failover := se.err.Status != http.StatusTooManyRequests && se.err.Status != http.StatusInsufficientStorage
		return true, failover, min(se.retryAfter, maxRetryAfter)
	}
	var stream *streamError
	if errors.As(err, &stream) {
		return false, false, 0
	}
	if req.idempotent || isDialError(err) {
		return true, true, 0
	}
	return false, false, 0
}

// isDialError reports whether err happened while connecting, so the request
// was certainly not received.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff returns the delay before round r of retries: RetryMin doubled r
// times, capped at RetryMax, then half of it fixed and half random ("equal
// jitter"), so clients restarted together spread out without waiting
// close to zero.
func (c *Client) backoff(r int) time.Duration {
	d := c.cfg.RetryMin
	for i := 0; i < r && d < c.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.RetryMax)
	half := d / 2
	return half + rand.N(half+1)
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// parseError reads API.md's error body; anything else (a proxy's HTML page)
// becomes an Error with code "http_<status>" and the start of the body.
func parseError(status int, body []byte, server string) *Error {
	var eb struct {
		Error *struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Details: eb.Error.Details, Server: server}
	}
	msg := string(bytes.TrimSpace(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Code: "http_" + strconv.Itoa(status), Message: msg, Server: server}
}

// getJSON sends a GET and decodes the JSON answer into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) (*response, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: q, idempotent: true})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return nil, fmt.Errorf("decode answer of GET %s: %w", path, err)
	}
	return resp, nil
}

// doJSON sends req and decodes the JSON answer into v.
func (c *Client) doJSON(ctx context.Context, req *request, v any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", req.method, req.path, err)
	}
	return nil
}

// sendJSON sends in (JSON-encoded, unless nil) and decodes the answer into
// out (unless nil).
func (c *Client) sendJSON(ctx context.Context, method, path string, idempotent bool, in, out any) error {
	req := &request{method: method, path: path, idempotent: idempotent}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode body of %s %s: %w", method, path, err)
		}
		req.body, req.contentType = b, "application/json"
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// sleepCtx waits d (nothing when d <= 0) or until ctx is done, whose
// error it then returns: the one wait between a client's attempts.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
