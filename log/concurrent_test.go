package log

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/theeye/theeye"
)

// TestConcurrentReadersWhileAppending runs tailing readers, a random-access
// reader, a Frames walker and a syncer against one appender, across segment
// seals. Readers must see every event exactly once, in order, with the
// right contents: never a partial frame. Run with -race.
func TestConcurrentReadersWhileAppending(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		l := mustOpen(t, t.TempDir(), Config{SegmentSize: 8 << 10})
		const frames = 200
		count := func(i int) int { return 1 + (i*7)%9 }
		var total uint64
		for i := range frames {
			total += uint64(count(i))
		}

		var wg sync.WaitGroup
		errs := make(chan error, 16)
		check := func(seq uint64, env *theeye.Envelope) error {
			if want := testEnvelope(seq); !equalEnvelope(env, &want) {
				return fmt.Errorf("seq %d: got %+v, want %+v", seq, env, want)
			}
			return nil
		}

		// Tailers: follow Changed, reading in batches of various sizes.
		for r := range 3 {
			batch := 7 + r*40
			wg.Go(func() {
				next := uint64(1)
				for next <= total {
					ch := l.Changed()
					n, err := l.ReadFrom(next, batch, func(seq uint64, env *theeye.Envelope) error {
						if seq != next {
							return fmt.Errorf("tailer got seq %d, want %d", seq, next)
						}
						next++
						return check(seq, env)
					})
					if err != nil {
						errs <- err
						return
					}
					if n == 0 {
						<-ch
					}
				}
			})
		}

		// Random reads of what is visible, and a walk over the frames.
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(7, uint64(codec)))
			for {
				ch := l.Changed()
				last := l.LastSeq()
				if last >= total {
					return
				}
				if last > 0 {
					from := 1 + rng.Uint64N(last)
					want := min(20, last-from+1)
					n, err := l.ReadFrom(from, 20, check)
					if err == nil && uint64(n) < want {
						err = fmt.Errorf("ReadFrom(%d, 20) saw %d events with %d visible", from, n, last)
					}
					next := uint64(1)
					if err == nil {
						err = l.Frames(0, func(fi FrameInfo) error {
							if fi.FirstSeq != next {
								return fmt.Errorf("Frames: frame at seq %d, want %d", fi.FirstSeq, next)
							}
							next = fi.LastSeq() + 1
							return nil
						})
					}
					if err == nil && next <= last {
						err = fmt.Errorf("Frames ended at seq %d with %d visible", next-1, last)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				<-ch
			}
		})

		// Sync now and then while appends go on.
		wg.Go(func() {
			for i := 0; ; i++ {
				ch := l.Changed()
				if l.LastSeq() >= total {
					return
				}
				if i%25 == 0 {
					if err := l.Sync(); err != nil {
						errs <- err
						return
					}
				}
				<-ch
			}
		})

		w := newTestWriter(t, l, codec)
		for i := range frames {
			w.append(count(i))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		checkRead(t, l, 0, int(total)+10, total)
	})
}

// TestCloseWhileReading closes the log under active readers: they must stop
// with ErrClosed (or finish), never crash.
func TestCloseWhileReading(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentSize: 4 << 10})
	w := newTestWriter(t, l, CodecZstd)
	w.appendFrames(50, 9)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				_, err := l.ReadFrom(1, 1<<20, func(uint64, *theeye.Envelope) error { return nil })
				if err != nil {
					if err != ErrClosed {
						t.Errorf("ReadFrom: %v", err)
					}
					return
				}
			}
		})
	}
	mustClose(t, l)
	wg.Wait()
}
