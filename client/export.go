package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/theeye/theeye"
)

// ErrExportCut is wrapped by the error of an Export that the server or
// the network cut short, and that could not be resumed: what was written
// is the start of the export, in order, every line whole.
var ErrExportCut = errors.New("the export was cut short")

// ExportQuery selects the events Export streams: one session's (ordered
// by timestamp, ties by seq), or those of a category (and name) and app,
// or with neither every event; always in a time range when From or To
// is set, oldest first.
type ExportQuery struct {
	SessionID string // one session; Category, Name and App must then be ""
	Category  string
	Name      string // needs Category
	App       string
	// From (inclusive) and To (exclusive) bound the event timestamp.
	From, To time.Time
	// MinSeq makes the server wait (up to Wait, default 5s, at most 60s)
	// until it has indexed this seq before it starts.
	MinSeq uint64
	Wait   time.Duration
}

// route returns the path and parameters of q's query.
func (q ExportQuery) route() (string, url.Values, error) {
	v := url.Values{}
	setCommon(v, q.From, q.To, 0, false, q.MinSeq, q.Wait)
	switch {
	case q.SessionID != "" && (q.Category != "" || q.Name != "" || q.App != ""):
		return "", nil, errors.New("a session export takes no category, name or app: it holds every app's events of the session")
	case q.Name != "" && q.Category == "":
		return "", nil, errors.New("name needs category: event types are category + name")
	case q.SessionID != "":
		return "/v1/sessions/" + url.PathEscape(q.SessionID) + "/events", v, nil
	}
	set(v, "category", q.Category)
	set(v, "name", q.Name)
	set(v, "app", q.App)
	return "/v1/events", v, nil
}

// ExportResult is what an Export wrote.
type ExportResult struct {
	Events int64 // events (lines) written
	Bytes  int64 // bytes written, newlines included
	// LastSeq and LastTimestamp are the last event's written.
	LastSeq       uint64
	LastTimestamp time.Time
	// IndexedSeq is the seq the node that started the export had indexed
	// (X-Eye-Indexed-Seq); a resumed export asks the next node for at
	// least as much.
	IndexedSeq uint64
	Resumed    int // times the export was resumed after a cut
}

// Export streams every event q selects to w as NDJSON (the server's
// Accept: application/x-ndjson export, no page size), each event one line
// exactly as queries return it, in one Write call per line. When the
// answer is cut (a node that stops, a connection lost, an error line of
// the server's), Export resumes where it was: it asks again from the last
// timestamp written, of a node that has indexed at least as far, and
// skips what it already wrote, so no event is written twice or left out.
// It gives up after Config.MaxRetries resumptions in a row that wrote
// nothing, with an error wrapping ErrExportCut. A failure before the
// first byte is retried and failed over like any query; a failure of w
// ends the export at once.
func (c *Client) Export(ctx context.Context, q ExportQuery, w io.Writer) (ExportResult, error) {
	path, base, err := q.route()
	if err != nil {
		return ExportResult{}, fmt.Errorf("export: %w", err)
	}
	e := &exporter{w: w}
	stalls := 0
	for {
		v := base
		if e.res.Events > 0 {
			v = cloneValues(base)
			v.Set("from", theeye.FormatTime(e.res.LastTimestamp))
			v.Set("min_seq", strconv.FormatUint(max(q.MinSeq, e.res.IndexedSeq), 10))
		}
		before := e.res.Events
		req := &request{method: http.MethodGet, path: path, query: v, idempotent: true,
			accept: "application/x-ndjson", extraTimeout: q.Wait, stream: e.read}
		_, err := c.do(ctx, req)
		if err == nil {
			return e.res, nil
		}
		var se *streamError
		var fe *finalError
		if !errors.As(err, &se) || errors.As(err, &fe) {
			return e.res, fmt.Errorf("export after %d events: %w", e.res.Events, err)
		}
		if e.res.Events > before {
			stalls = 0
		} else {
			stalls++
		}
		if c.cfg.MaxRetries < 0 || stalls > c.cfg.MaxRetries || ctx.Err() != nil {
			return e.res, fmt.Errorf("export: %w after %d events%s: %w", ErrExportCut, e.res.Events, e.where(), err)
		}
		c.log.Info("export cut; resuming", "events", e.res.Events, "err", err)
		if err := sleepCtx(ctx, c.backoff(stalls)); err != nil {
			return e.res, fmt.Errorf("export: %w after %d events%s: %w", ErrExportCut, e.res.Events, e.where(), err)
		}
		e.res.Resumed++
	}
}

// cloneValues copies url.Values.
func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// finalError is a failure of an export that resuming cannot mend: the
// writer failed, or the server answered something that is not an export.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

// exporter copies the answers of one Export to its writer.
type exporter struct {
	w       io.Writer
	res     ExportResult
	started bool // an answer was read: IndexedSeq is the first node's
	// resuming is set while the lines of a resumed answer are at or
	// before the last written (same timestamp, seq not past it).
	resuming bool
}

func (e *exporter) where() string {
	if e.res.Events == 0 {
		return ""
	}
	return fmt.Sprintf(" (the last written: seq %d, timestamp %s)", e.res.LastSeq, theeye.FormatTime(e.res.LastTimestamp))
}

// read is the stream function of one answer.
func (e *exporter) read(resp *http.Response, body io.Reader) error {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/x-ndjson" && mt != "application/ndjson" {
		return &finalError{fmt.Errorf("the server answered %q, not NDJSON: it may be older than this client", mt)}
	}
	if !e.started {
		e.started = true
		e.res.IndexedSeq, _ = strconv.ParseUint(resp.Header.Get("X-Eye-Indexed-Seq"), 10, 64)
	}
	e.resuming = e.res.Events > 0
	rd := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if lerr := e.line(line, resp.Request); lerr != nil {
				return lerr
			}
		} else if len(line) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			return fmt.Errorf("the answer ended inside a line: %w", io.ErrUnexpectedEOF)
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("read the export: %w", err)
		}
	}
}

// line handles one line of an answer: an event to write (or to skip, when
// a resumed answer repeats it), or the server's error.
func (e *exporter) line(line []byte, r *http.Request) error {
	if bytes.HasPrefix(line, []byte(`{"error":`)) {
		server := ""
		if r != nil {
			server = r.URL.Scheme + "://" + r.URL.Host
		}
		pe := parseError(http.StatusInternalServerError, line, server)
		if pe.Code == "unavailable" {
			pe.Status = http.StatusServiceUnavailable
		}
		return fmt.Errorf("the server ended the export: %w", pe)
	}
	var k struct {
		Seq       uint64    `json:"seq"`
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(line, &k); err != nil {
		return &finalError{fmt.Errorf("line %d of the answer is not an event (%.80q): %w", e.res.Events+1, line, err)}
	}
	if k.Seq == 0 {
		return &finalError{fmt.Errorf("line %d of the answer is not an event (%.80q): no seq", e.res.Events+1, line)}
	}
	if e.resuming {
		switch c := k.Timestamp.Compare(e.res.LastTimestamp); {
		case c < 0, c == 0 && k.Seq <= e.res.LastSeq:
			return nil // written before the cut
		}
		e.resuming = false
	}
	n, err := e.w.Write(line)
	e.res.Bytes += int64(n)
	if err != nil {
		return &finalError{fmt.Errorf("write the export: %w", err)}
	}
	e.res.Events++
	e.res.LastSeq, e.res.LastTimestamp = k.Seq, k.Timestamp
	return nil
}
