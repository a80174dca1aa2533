package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/theeye/theeye/client"
)

// sendOptions are the flags of eyectl send.
type sendOptions struct {
	rate       float64
	batchSize  int
	gzip       bool
	noProgress bool
}

func (c *cli) sendCommand() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send FILE|-",
		Short: "Send events from a file or stdin: NDJSON or a JSON array, gzipped or not",
		Long: `Send events from FILE (or stdin with -): NDJSON (one object per line), a JSON
array of objects, or a stream of objects; gzip input is detected by its magic
bytes. Events are sent as they are, in batches, with an idempotency id added to
those without one, so retries never store an event twice. A progress bar shows
on a terminal; a summary line follows (sent, rejected, events/s, last seq).

Validation is asynchronous: an event the server accepted may still fail it;
see eyectl errors --min-seq <last seq>.`,
		Example: `  eyectl send events.ndjson
  zcat big.ndjson.gz | eyectl send - --rate 500
  eyectl send export.json.gz --key "$INGEST_KEY" --server http://eye1:8080,http://eye2:8080`,
		Args: exactArgs(1, "one FILE argument (- for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.rate < 0 {
				return usageErrf("--rate %g: want 0 (no limit) or more", o.rate)
			}
			return c.send(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.Float64Var(&o.rate, "rate", 0, "send at most this many events per second (0: no limit)")
	f.IntVar(&o.batchSize, "batch-size", 500, "events per request")
	f.BoolVar(&o.gzip, "gzip", false, "compress requests")
	f.BoolVar(&o.noProgress, "no-progress", false, "no progress bar, even on a terminal")
	return cmd
}

// partialSendError reports events that were not stored; its cause is the
// first failure.
type partialSendError struct {
	total, rejected uint64
	cause           error
}

func (e *partialSendError) summary() string {
	return fmt.Sprintf("%d of %d events were not stored", e.rejected, e.total)
}

func (e *partialSendError) Error() string {
	if e.cause == nil {
		return e.summary() + " (see the lines above)"
	}
	return e.summary() + ": " + e.cause.Error()
}

func (e *partialSendError) Unwrap() error { return e.cause }

// sendSummary is what send prints at the end (as JSON with -o json).
type sendSummary struct {
	Sent     uint64  `json:"sent"`
	Rejected uint64  `json:"rejected"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"events_per_second"`
	LastSeq  uint64  `json:"last_seq"`
}

func (c *cli) send(ctx context.Context, path string, o sendOptions) error {
	in, size, name, err := c.openInput(path)
	if err != nil {
		return err
	}
	defer in.Close()
	r := &sendRun{c: c, name: name}
	var src io.Reader = in
	if !o.noProgress && isTerminal(c.stderr) {
		r.bar = newBar(c.stderr, size, "sending "+name, progressbar.OptionShowBytes(true))
		src = io.TeeReader(in, r.bar)
	}
	cl, err := c.newClient(func(cfg *client.Config) {
		cfg.MaxRetries = max(cfg.MaxRetries, 10)
		cfg.RetryMax = 5 * time.Second
		cfg.BatchSize = max(o.batchSize, 1)
		cfg.QueueSize = max(4*cfg.BatchSize, 10000)
		cfg.FlushInterval = 200 * time.Millisecond
		cfg.Gzip = o.gzip
		cfg.OnError = r.batchFailed
	})
	if err != nil {
		return err
	}
	start := time.Now()
	stopWatch := r.watchThrottle(cl)
	readErr := r.track(ctx, cl, src, o.rate)
	stopWatch()
	// Send what was read, whatever happened; after Ctrl-C, for 10 seconds
	// at most (what is still queued then is reported as not stored).
	closeCtx := context.Background()
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(closeCtx, 10*time.Second)
		defer cancel()
	}
	closeErr := cl.Close(closeCtx)
	if r.bar != nil {
		r.bar.Finish()
	}
	sum := r.summary(cl.Stats(), time.Since(start))
	if err := c.printSummary(sum); err != nil {
		return err
	}
	switch {
	case readErr != nil && errors.Is(readErr, context.Canceled):
		return readErr
	case readErr != nil:
		return usageErr(fmt.Errorf("%s: %w (the %d events before it were sent)", name, readErr, sum.Sent))
	case sum.Rejected > 0:
		cause := r.cause()
		if cause == nil {
			cause = closeErr
		}
		return &partialSendError{total: sum.Sent + sum.Rejected, rejected: sum.Rejected, cause: cause}
	case closeErr != nil:
		return closeErr
	}
	return nil
}

// newBar is eyectl's progress bar on w: size units (-1: unknown, a
// spinner), described by desc, redrawn at most every 100 ms, cleared when
// done; extra adds what the command counts (bytes, events).
func newBar(w io.Writer, size int64, desc string, extra ...progressbar.Option) *progressbar.ProgressBar {
	opts := append([]progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	}, extra...)
	return progressbar.NewOptions64(size, opts...)
}

// sendRun is one send's reporting: what went wrong with batches, printed as
// it happens (one line each) and kept for the exit code, and the elements
// skipped.
type sendRun struct {
	c    *cli
	name string
	bar  *progressbar.ProgressBar // nil without a terminal

	mu       sync.Mutex
	firstErr error  // guarded by mu
	lastMsg  string // guarded by mu
	skipped  uint64 // guarded by mu
}

// batchFailed is the client's OnError: one line per new cause.
func (r *sendRun) batchFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	var be *client.BatchError
	n := 0
	if errors.As(err, &be) {
		n = len(be.IDs)
	}
	_, msg := r.c.explain(err)
	if msg == r.lastMsg {
		return // the same cause again: once is enough
	}
	r.lastMsg = msg
	if r.bar != nil {
		r.bar.Clear()
	}
	fmt.Fprintf(r.c.stderr, "eyectl: a batch of %d events was not stored: %s\n", n, msg)
}

// watchThrottle shows, in the progress line, when the cluster asks to slow
// down (429 rate_limited or overloaded, 507): the client waits as told and
// retries, and the line says why the rate dropped. It returns the func
// that stops it.
func (r *sendRun) watchThrottle(cl *client.Client) (stop func()) {
	if r.bar == nil {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var last client.Stats
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			st := cl.Stats()
			desc := "sending " + r.name
			switch {
			case st.StorageFull > last.StorageFull:
				desc += " (the cluster is short of disk: waiting)"
			case st.Overloaded > last.Overloaded:
				desc += " (the cluster asks to slow down: indexing behind)"
			case st.RateLimited > last.RateLimited:
				desc += " (throttled by the key's rate limit)"
			}
			r.mu.Lock()
			r.bar.Describe(desc)
			r.mu.Unlock()
			last = st
		}
	}()
	return func() { close(done); <-finished }
}

func (r *sendRun) cause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

// track reads the events of src and hands each to the client, at most
// perSecond a second when positive. An element that is not an object is
// skipped (the server would refuse its whole batch) and reported.
func (r *sendRun) track(ctx context.Context, cl *client.Client, src io.Reader, perSecond float64) error {
	var limiter *rate.Limiter
	if perSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond/10)))
	}
	return readEvents(src, func(i int, raw json.RawMessage) error {
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		err := cl.TrackRaw(ctx, raw)
		if err != nil && !errors.Is(err, client.ErrClosed) && ctx.Err() == nil {
			r.mu.Lock()
			r.skipped++
			fmt.Fprintf(r.c.stderr, "eyectl: %s: element %d: %s; skipped\n", r.name, i, errors.Unwrap(err).Error())
			r.mu.Unlock()
			return nil
		}
		return err
	})
}

func (r *sendRun) summary(st client.Stats, elapsed time.Duration) sendSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := sendSummary{Sent: st.Sent, Rejected: st.Failed + r.skipped, Seconds: elapsed.Seconds(), LastSeq: st.LastSeq}
	if elapsed > 0 {
		sum.Rate = float64(st.Sent) / elapsed.Seconds()
	}
	return sum
}

func (c *cli) printSummary(sum sendSummary) error {
	if c.format() == "table" {
		fmt.Fprintf(c.stdout, "sent %d events, rejected %d, in %s (%.0f events/s); last seq %d\n",
			sum.Sent, sum.Rejected, time.Duration(sum.Seconds*float64(time.Second)).Round(time.Millisecond), sum.Rate, sum.LastSeq)
		return nil
	}
	return writeNDJSON(c.stdout, sum)
}

func (c *cli) openInput(path string) (io.ReadCloser, int64, string, error) {
	if path == "-" {
		return io.NopCloser(c.stdin), -1, "stdin", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, path, usageErr(fmt.Errorf("open input: %w", err))
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, path, nil
}

// readEvents reads JSON values from r (gunzipping it if it starts with the
// gzip magic bytes): the elements of an array if the input starts with
// '[', else a stream of values (NDJSON is one). fn gets each value and its
// index; its error stops the reading.
func readEvents(r io.Reader, fn func(int, json.RawMessage) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("read gzip input: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	first, err := firstByte(br)
	if err == io.EOF {
		return errors.New("no events in the input")
	}
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	dec := json.NewDecoder(br)
	array := first == '['
	if array {
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("read input: %w", err)
		}
	}
	i := 0
	for array && dec.More() || !array {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !array && err == io.EOF {
				return nil
			}
			return fmt.Errorf("element %d, near byte %d: invalid JSON: %w", i, dec.InputOffset(), err)
		}
		if err := fn(i, raw); err != nil {
			return err
		}
		i++
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("end of the array, near byte %d: %w", dec.InputOffset(), err)
	}
	return nil
}

// firstByte returns the first byte that is not white space, unread.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, br.UnreadByte()
	}
}
