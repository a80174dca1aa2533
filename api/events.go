package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/klauspost/compress/gzip"
	"github.com/oklog/ulid/v2"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
)

// handleIngest is POST /v1/events: split, stamp, replicate, then 202.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request, _ httprouter.Params, c *caller) {
	// Flow control first (a disk below the watermark, an index too far
	// behind): the body is not even read.
	if err := s.flow.admitIngest(); err != nil {
		s.writeError(w, r, err)
		return
	}
	ndjson, err := ingestMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Append copies the events into its entry before it returns, so the
	// body's buffer goes back to the pool when the handler ends.
	pb := s.bufs.get()
	defer s.bufs.put(pb)
	body, err := s.readBody(w, r, pb)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.disk.charge(int64(len(body))); err != nil {
		s.writeError(w, r, err)
		return
	}
	var raws [][]byte
	if ndjson {
		raws, err = splitNDJSON(body, splitLimits{event: s.cfg.MaxEvent, events: s.cfg.MaxBatchEvents})
	} else {
		raws, err = splitJSON(body, splitLimits{event: s.cfg.MaxEvent, events: s.cfg.MaxBatchEvents})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	nowT := s.cfg.Now()
	if err := s.limits.take(c.key, len(raws), nowT); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.flow.take(len(raws)); err != nil {
		s.writeError(w, r, err)
		return
	}
	now := nowT.UnixNano()
	app := c.key.EventApp()
	envs := make([]theeye.Envelope, len(raws))
	for i, raw := range raws {
		envs[i] = theeye.Envelope{ReceivedAt: now, App: app, ID: theeye.EventID(ulid.Make()), Raw: raw}
	}
	seq, err := s.cfg.Node.Append(r.Context(), envs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.m.ingestEvents.Add(float64(len(envs)))
	s.m.ingestRequests.Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	b := make([]byte, 0, 64)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(envs)), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "}\n"...)
	w.Write(b)
}

// ingestMediaType accepts JSON (also when no type is given) and NDJSON.
func ingestMediaType(ct string) (ndjson bool, err error) {
	if ct == "" {
		return false, nil
	}
	mt, _, perr := mime.ParseMediaType(ct)
	if perr != nil {
		return false, theeye.Errorf(theeye.EUnsupportedMedia, "cannot read Content-Type %q: %v", ct, perr)
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return false, nil
	case mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl" || mt == "application/x-jsonlines":
		return true, nil
	}
	return false, theeye.Errorf(theeye.EUnsupportedMedia,
		"Content-Type %q is not accepted: send application/json (an event or an array) or application/x-ndjson", mt)
}

// readBody reads the whole body, gunzipping it when Content-Encoding says
// gzip, and refuses more than MaxBody bytes as sent (a compressed stream
// is bounded too, whatever it inflates to) and after decompression.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, into *[]byte) ([]byte, error) {
	limit := s.cfg.MaxBody
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > limit {
			return nil, theeye.Errorf(theeye.EBodyTooLarge, "the body is %d bytes, over the %d-byte limit", r.ContentLength, limit).
				WithDetail("limit", limit)
		}
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, theeye.Errorf(theeye.EInvalidRequest, "Content-Encoding is gzip but the body is not: %v", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, theeye.Errorf(theeye.EUnsupportedMedia, "Content-Encoding %q is not accepted: send gzip or none", enc)
	}
	buf := bytes.NewBuffer((*into)[:0])
	defer func() { *into = buf.Bytes() }() // keep what the buffer grew to
	if r.ContentLength > 0 && r.ContentLength <= limit {
		// ReadFrom wants MinRead bytes free before each read, the one
		// that finds EOF included: without them it would copy the whole
		// body into a buffer twice the size.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, theeye.Errorf(theeye.EBodyTooLarge, "the body as sent is over the %d-byte limit", limit).WithDetail("limit", limit)
	}
	if err != nil {
		return nil, theeye.Errorf(theeye.EInvalidRequest, "read body: %v", err)
	}
	if n > limit {
		return nil, theeye.Errorf(theeye.EBodyTooLarge, "the body is over the %d-byte limit", limit).WithDetail("limit", limit)
	}
	return buf.Bytes(), nil
}

// queryParams are the parameters every list route shares.
type queryParams struct {
	from, to time.Time
	limit    int
	cursor   string
	desc     bool
	minSeq   uint64
	wait     time.Duration
	ndjson   bool
}

const (
	defaultLimit = 100
	maxLimit     = 10000
	defaultWait  = 5 * time.Second
	maxWait      = 60 * time.Second
)

// parseQuery reads the list parameters from q (the request's query,
// parsed once by the caller, which reads its own filters from it too) and
// the Accept header.
func parseQuery(q url.Values, accept string) (queryParams, error) {
	p := queryParams{limit: defaultLimit, wait: defaultWait, cursor: q.Get("cursor")}
	var err error
	if v := q.Get("from"); v != "" {
		if p.from, err = theeye.ParseTimestamp(v); err != nil {
			return p, theeye.Errorf(theeye.EInvalidParam, "from: %v", err).WithDetail("parameter", "from")
		}
	}
	if v := q.Get("to"); v != "" {
		if p.to, err = theeye.ParseTimestamp(v); err != nil {
			return p, theeye.Errorf(theeye.EInvalidParam, "to: %v", err).WithDetail("parameter", "to")
		}
	}
	if !p.from.IsZero() && !p.to.IsZero() && !p.to.After(p.from) {
		return p, theeye.Errorf(theeye.EInvalidParam, "to (%s) must be after from (%s)", theeye.FormatTime(p.to), theeye.FormatTime(p.from)).WithDetail("parameter", "to")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, theeye.Errorf(theeye.EInvalidParam, "limit %q: want a whole number from 1 to %d", v, maxLimit).WithDetail("parameter", "limit")
		}
		p.limit = n
	}
	switch v := q.Get("order"); v {
	case "", "asc":
	case "desc":
		p.desc = true
	default:
		return p, theeye.Errorf(theeye.EInvalidParam, "order %q: want asc or desc", v).WithDetail("parameter", "order")
	}
	if err := parseMinSeq(q, &p); err != nil {
		return p, err
	}
	p.ndjson = acceptsNDJSON(accept)
	if p.ndjson {
		p.limit = 0
	}
	return p, nil
}

// parseMinSeq reads min_seq and wait (how long to wait for this node to
// index min_seq: waitIndexed) into p.
func parseMinSeq(q url.Values, p *queryParams) error {
	if v := q.Get("min_seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return theeye.Errorf(theeye.EInvalidParam, "min_seq %q: want a seq (a whole number)", v).WithDetail("parameter", "min_seq")
		}
		p.minSeq = n
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxWait {
			return theeye.Errorf(theeye.EInvalidParam, "wait %q: want a duration such as 500ms or 30s, at most %s", v, maxWait).WithDetail("parameter", "wait")
		}
		p.wait = d
	}
	return nil
}

// checkTypeFilter refuses a name filter without its category.
func checkTypeFilter(category, name string) error {
	if name != "" && category == "" {
		return theeye.Errorf(theeye.EInvalidParam, "name needs category: event types are category + name").WithDetail("parameter", "name")
	}
	return nil
}

func acceptsNDJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		if mt == "application/x-ndjson" || mt == "application/ndjson" {
			return true
		}
	}
	return false
}

// waitIndexed implements min_seq: wait (bounded) until this node has
// indexed seq, else 503.
func (s *Server) waitIndexed(ctx context.Context, p queryParams) error {
	if p.minSeq == 0 || s.cfg.Index.IndexedSeq() >= p.minSeq {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, p.wait)
	defer cancel()
	if err := s.cfg.Index.WaitIndexed(wctx, p.minSeq); err != nil {
		return theeye.Errorf(theeye.EUnavailable, "this node has indexed up to seq %d, not %d, within %s; retry or raise wait",
			s.cfg.Index.IndexedSeq(), p.minSeq, p.wait).WithDetail("indexed_seq", s.cfg.Index.IndexedSeq())
	}
	return nil
}

func (s *Server) handleSessionEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	p, err := parseQuery(r.URL.Query(), r.Header.Get("Accept"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sid := ps.ByName("session_id")
	s.serveEvents(w, r, p, index.EventQuery{Session: sid})
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	v := r.URL.Query()
	p, err := parseQuery(v, r.Header.Get("Accept"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := index.EventQuery{Category: v.Get("category"), Name: v.Get("name"), App: v.Get("app")}
	if err := checkTypeFilter(q.Category, q.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveEvents(w, r, p, q)
}

// serveEvents serves the events of q, with the range, paging and order of
// the list parameters p.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, p queryParams, q index.EventQuery) {
	q.From, q.To, q.Desc = p.from, p.to, p.desc
	s.serveList(w, r, p, "events", func(ctx context.Context, pg pageRange, fn func([]byte) error) (string, error) {
		q.Cursor, q.Limit, q.MaxBytes = pg.cursor, pg.limit, pg.maxBytes
		return s.cfg.Index.Events(ctx, q, fn)
	})
}

func (s *Server) handleErrors(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	v := r.URL.Query()
	p, err := parseQuery(v, r.Header.Get("Accept"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := index.ErrorQuery{From: p.from, To: p.to, Reason: v.Get("reason"), App: v.Get("app"),
		Category: v.Get("category"), Name: v.Get("name"), Desc: p.desc}
	if err := checkTypeFilter(q.Category, q.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveList(w, r, p, "errors", func(ctx context.Context, pg pageRange, fn func([]byte) error) (string, error) {
		q.Cursor, q.Limit, q.MaxBytes = pg.cursor, pg.limit, pg.maxBytes
		return s.cfg.Index.Errors(ctx, q, fn)
	})
}

// pageRange is one page of a list: where it starts and what bounds it.
type pageRange struct {
	cursor   string
	limit    int // items; 0: none
	maxBytes int // bytes of items; 0: none
}

// pageFunc reads one page of a list, passing each item (already rendered
// as JSON) to fn, and returns the cursor of the next page ("" at the end).
type pageFunc func(ctx context.Context, pg pageRange, fn func([]byte) error) (string, error)

// exportChunkBytes is how much of an NDJSON export is read from the index
// at a time: it is written to the client only once read, so a client that
// stops reading never holds the index (a lock, an iterator) while it
// stalls.
const exportChunkBytes = 1 << 20

// exportWriteTimeout is how long one chunk of an export may take to reach
// the client before the connection is dropped.
const exportWriteTimeout = 30 * time.Second

// serveList answers a list route: a page as {"<field>": [...],
// "next_cursor": ...}, at most limit items and about MaxPageBytes bytes, or
// with Accept: application/x-ndjson every match streamed one per line.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, p queryParams, field string, page pageFunc) {
	err := s.waitIndexed(r.Context(), p)
	// Set whether or not the wait succeeded: a 503 says how far it got.
	w.Header().Set("X-Eye-Indexed-Seq", strconv.FormatUint(s.cfg.Index.IndexedSeq(), 10))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.ndjson {
		s.streamNDJSON(w, r, p.cursor, page)
		return
	}
	pb := s.bufs.get()
	defer s.bufs.put(pb)
	buf := append((*pb)[:0], `{"`...)
	buf = append(buf, field...)
	buf = append(buf, `":[`...)
	n := 0
	next, err := page(r.Context(), pageRange{cursor: p.cursor, limit: p.limit, maxBytes: s.cfg.MaxPageBytes}, func(item []byte) error {
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, item...)
		n++
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	buf = append(buf, `],"next_cursor":`...)
	if next == "" {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendQuote(buf, next) // cursors are base64url: quoting is JSON-safe
	}
	buf = append(buf, "}\n"...)
	*pb = buf
	w.Header().Set("Content-Type", "application/json")
	// With the length known the page goes out in one write, not chunked.
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.Write(buf)
}

// streamNDJSON streams every match from cursor on, one chunk read from the
// index at a time and then written, each write bounded by
// exportWriteTimeout.
func (s *Server) streamNDJSON(w http.ResponseWriter, r *http.Request, cursor string, page pageFunc) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	dw := &deadlineWriter{w: w, rc: rc, timeout: exportWriteTimeout}
	pb := s.bufs.get()
	defer s.bufs.put(pb)
	buf := slices.Grow((*pb)[:0], exportChunkBytes+64<<10)
	defer func() { *pb = buf }()
	started := false
	var err error
	for {
		buf = buf[:0]
		cursor, err = page(r.Context(), pageRange{cursor: cursor, maxBytes: exportChunkBytes}, func(item []byte) error {
			buf = append(buf, item...)
			buf = append(buf, '\n')
			return nil
		})
		if err != nil || len(buf) == 0 {
			break
		}
		started = true
		if _, err = dw.Write(buf); err != nil {
			return // the client is gone or too slow: nothing more to tell it
		}
		rc.Flush()
		if cursor == "" {
			break
		}
	}
	if err != nil {
		if !started {
			s.writeError(w, r, err)
			return
		}
		// Headers are gone: end the stream with an error line the client can see.
		e := s.publicError(r, err)
		line, _ := json.Marshal(errorBody{Error: errorFields{Code: e.Code, Message: e.Message}})
		dw.Write(append(line, '\n'))
	}
}
