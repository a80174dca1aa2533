package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/index"
)

// GET /v1/stream: Server-Sent Events of the valid indexed events, in seq
// order, from a seq on (from_seq, or the Last-Event-ID a reconnecting
// client sends) or from the live end. Each stream reads the index at its
// own pace (index.ReadStream: the log by seq up to IndexedSeq), a chunk at
// a time: read, then write with a deadline, so a reader never holds the
// index while it stalls and nothing is buffered for it beyond one chunk. A
// reader that takes no data for StreamWriteTimeout is dropped (its socket
// is full: nothing more can reach it, so the reason goes to the log and
// theeye_stream_ends_total); the ends that can be told (the node shutting
// down, an error) are sent as a last "event: error" with API.md's error
// body. Waiting readers sleep on the index's notification, so however many
// there are, the indexer does nothing more for them.

// Defaults of the stream settings of Config.
const (
	DefaultMaxStreams         = 64
	DefaultStreamKeepAlive    = 15 * time.Second
	DefaultStreamWriteTimeout = 30 * time.Second
)

// What one read of the index for a stream covers: it is written to the
// client before the next is read.
const (
	streamChunkEvents = 4096
	streamChunkBytes  = 256 << 10
)

// streamRetryMillis is the reconnection delay the stream suggests to
// EventSource clients ("retry:").
const streamRetryMillis = 1000

// errShuttingDown ends the streams when the server shuts down.
var errShuttingDown = errors.New("the node is shutting down")

// streams counts and ends the open streams of a Server.
type streams struct {
	max       int
	keepAlive time.Duration
	timeout   time.Duration
	open      atomic.Int64

	ctx  context.Context // cancelled at shutdown
	stop context.CancelFunc

	gauge  prometheus.Gauge
	events prometheus.Counter
	ends   *prometheus.CounterVec
}

// Reasons a stream ends, the label of theeye_stream_ends_total.
const (
	endClientGone = "client_gone"
	endSlowReader = "slow_reader"
	endShutdown   = "shutdown"
	endError      = "error"
)

// newStreams builds the streams of cfg (its defaults set: setDefaults).
func newStreams(cfg *Config) *streams {
	st := &streams{max: cfg.MaxStreams, keepAlive: cfg.StreamKeepAlive, timeout: cfg.StreamWriteTimeout,
		gauge:  newGauge("theeye_streams_open", "Streams (GET /v1/stream) open on this node."),
		events: newCounter("theeye_stream_events_total", "Events sent on streams by this node."),
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theeye_stream_ends_total", Help: "Streams ended, by reason (client_gone, slow_reader: took no data for --stream-write-timeout, shutdown, error).",
		}, []string{"reason"}),
	}
	for _, r := range []string{endClientGone, endSlowReader, endShutdown, endError} {
		st.ends.WithLabelValues(r)
	}
	st.ctx, st.stop = context.WithCancel(context.Background())
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(st.gauge, st.events, st.ends)
	}
	return st
}

// acquire takes a stream slot; false when all are taken.
func (st *streams) acquire() bool {
	if st.open.Add(1) > int64(st.max) {
		st.open.Add(-1)
		return false
	}
	st.gauge.Inc()
	return true
}

func (st *streams) release() {
	st.open.Add(-1)
	st.gauge.Dec()
}

// shutdown ends every stream (http.Server.Shutdown does not cancel the
// requests it waits for).
func (st *streams) shutdown() { st.stop() }

// streamParams is what a stream request asks for.
type streamParams struct {
	query  index.StreamQuery
	after  uint64 // the stream starts after this seq...
	resume bool   // ...when set; else at the live end
}

// parseStreamParams reads from_seq, the Last-Event-ID header (which wins:
// it is what a reconnecting EventSource sends, with the URL it first
// used) and the filters. A filter longer than maxLen (an event's limit)
// could match nothing and is refused.
func parseStreamParams(q url.Values, lastEventID []string, maxLen int) (streamParams, error) {
	var p streamParams
	bad := func(param, format string, args ...any) (streamParams, error) {
		return streamParams{}, theeye.Errorf(theeye.EInvalidParam, format, args...).WithDetail("parameter", param)
	}
	if vs, ok := q["from_seq"]; ok {
		if len(vs) != 1 {
			return bad("from_seq", "from_seq is given %d times; give it once", len(vs))
		}
		n, err := strconv.ParseUint(vs[0], 10, 64)
		if err != nil {
			return bad("from_seq", "from_seq %q: want a seq (a whole number, 0 for the start of the log)", truncate(vs[0], 40))
		}
		p.after, p.resume = n, true
	}
	if len(lastEventID) > 1 {
		return bad("Last-Event-ID", "Last-Event-ID is given %d times; give it once", len(lastEventID))
	}
	if len(lastEventID) == 1 {
		if v := strings.TrimSpace(lastEventID[0]); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return bad("Last-Event-ID", "Last-Event-ID %q: want the id of the last event received (a seq)", truncate(v, 40))
			}
			p.after, p.resume = n, true
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"category", &p.query.Category}, {"name", &p.query.Name}, {"app", &p.query.App}, {"session_id", &p.query.Session}} {
		vs := q[f.name]
		if len(vs) > 1 {
			return bad(f.name, "%s is given %d times; give it once", f.name, len(vs))
		}
		if len(vs) == 1 {
			if len(vs[0]) > maxLen {
				return bad(f.name, "%s is %d bytes, longer than an event may be (%d): it matches nothing", f.name, len(vs[0]), maxLen)
			}
			*f.dst = vs[0]
		}
	}
	if err := checkTypeFilter(p.query.Category, p.query.Name); err != nil {
		return streamParams{}, err
	}
	if p.after == math.MaxUint64 {
		return bad("from_seq", "from_seq %d: no seq can follow it", p.after)
	}
	return p, nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params, c *caller) {
	p, err := parseStreamParams(r.URL.Query(), r.Header.Values("Last-Event-ID"), s.cfg.MaxEvent)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.streams.acquire() {
		s.writeError(w, r, theeye.Errorf(theeye.EUnavailable,
			"this node serves its maximum of %d streams (--max-streams); retry later or on another node", s.streams.max).
			WithDetail(retryAfterDetail, 5))
		return
	}
	defer s.streams.release()
	// One reading for the live start and the header: a live stream's
	// X-Eye-Stream-After and X-Eye-Indexed-Seq then agree.
	indexed := s.cfg.Index.IndexedSeq()
	next := p.after + 1
	if !p.resume {
		next = indexed + 1
	}
	rc := http.NewResponseController(w)
	// The server's read timeout would end the stream: net/http cancels a
	// request whose connection read times out, and nothing more is read
	// here. Writes keep their deadline, one per chunk.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer (nginx) pass each event on
	h.Set("X-Eye-Indexed-Seq", strconv.FormatUint(indexed, 10))
	// Where the stream starts, for a client that reconnects before its
	// first event (a live start would otherwise begin again later).
	h.Set("X-Eye-Stream-After", strconv.FormatUint(next-1, 10))
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	defer context.AfterFunc(s.streams.ctx, func() { cancel(errShuttingDown) })()
	sw := &sseWriter{deadlineWriter{w: w, rc: rc, timeout: s.streams.timeout}}
	hello := fmt.Appendf(nil, "retry: %d\n: stream of node %s, after seq %d\n\n", streamRetryMillis, s.cfg.Node.ID(), next-1)
	err = sw.write(hello)
	if err == nil {
		err = s.follow(ctx, sw, p.query, next)
	}
	s.endStream(r, c, sw, err)
}

// follow sends the events of q from seq next on, a chunk at a time, and a
// keep-alive comment when nothing was written for keepAlive. It returns
// why it stopped.
func (s *Server) follow(ctx context.Context, sw *sseWriter, q index.StreamQuery, next uint64) error {
	pb := s.bufs.get()
	defer s.bufs.put(pb)
	buf := (*pb)[:0]
	defer func() { *pb = buf }()
	lastWrite := time.Now()
	for {
		buf = buf[:0]
		n := 0
		var err error
		next, err = s.cfg.Index.ReadStream(ctx, q, next, streamChunkEvents, streamChunkBytes, func(seq uint64, ev []byte) error {
			buf = appendSSEEvent(buf, seq, ev)
			n++
			return nil
		})
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return cause
			}
			return err
		}
		if len(buf) > 0 {
			if err := sw.write(buf); err != nil {
				return err
			}
			s.streams.events.Add(float64(n))
			lastWrite = time.Now()
		}
		if next <= s.cfg.Index.IndexedSeq() {
			if time.Since(lastWrite) >= s.streams.keepAlive { // a long replay that matches little
				if err := sw.write([]byte(": keep-alive\n\n")); err != nil {
					return err
				}
				lastWrite = time.Now()
			}
			continue
		}
		wctx, wcancel := context.WithDeadline(ctx, lastWrite.Add(s.streams.keepAlive))
		err = s.cfg.Index.WaitIndexed(wctx, next)
		wcancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case errors.Is(err, context.DeadlineExceeded):
			if err := sw.write([]byte(": keep-alive\n\n")); err != nil {
				return err
			}
			lastWrite = time.Now()
		default:
			return err
		}
	}
}

// appendSSEEvent appends one event of the stream: its seq as the SSE id,
// and the rendered event (one line) as its data.
func appendSSEEvent(dst []byte, seq uint64, ev []byte) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, "\nevent: event\ndata: "...)
	dst = append(dst, ev...)
	return append(dst, "\n\n"...)
}

// endStream tells the client, where it can still hear it, why the stream
// ends, and logs and counts it.
func (s *Server) endStream(r *http.Request, c *caller, sw *sseWriter, err error) {
	log := s.logger.With("remote", r.RemoteAddr, "key", c.key.ID, "query", r.URL.RawQuery)
	var we *streamWriteError
	switch {
	case errors.As(err, &we) && errors.Is(we.err, os.ErrDeadlineExceeded):
		s.streams.ends.WithLabelValues(endSlowReader).Inc()
		log.Warn("stream reader dropped: it took no data for the stream write timeout (a slow reader); it may reconnect with Last-Event-ID",
			"timeout", s.streams.timeout)
		return
	case errors.As(err, &we), r.Context().Err() != nil:
		s.streams.ends.WithLabelValues(endClientGone).Inc()
		log.Debug("stream client gone", "err", err)
		return
	case errors.Is(err, errShuttingDown), errors.Is(err, index.ErrClosed):
		s.streams.ends.WithLabelValues(endShutdown).Inc()
		err = theeye.Errorf(theeye.EUnavailable, "the node is shutting down; reconnect with Last-Event-ID, to another node if this one stays down")
	default:
		s.streams.ends.WithLabelValues(endError).Inc()
	}
	e := s.publicError(r, err)
	body, _ := json.Marshal(errorBody{Error: errorFields{Code: e.Code, Message: e.Message, Details: e.Details}})
	sw.timeout = min(sw.timeout, 5*time.Second)
	sw.write(fmt.Appendf(nil, "event: error\ndata: %s\n\n", body))
}

// sseWriter writes a stream's chunks, each bounded by a write deadline
// (deadlineWriter) and flushed.
type sseWriter struct{ deadlineWriter }

// streamWriteError is a failed write to the client.
type streamWriteError struct{ err error }

func (e *streamWriteError) Error() string { return "write stream: " + e.err.Error() }
func (e *streamWriteError) Unwrap() error { return e.err }

func (sw *sseWriter) write(b []byte) error {
	if _, err := sw.Write(b); err != nil {
		return &streamWriteError{err}
	}
	if err := sw.rc.Flush(); err != nil {
		return &streamWriteError{err}
	}
	return nil
}
