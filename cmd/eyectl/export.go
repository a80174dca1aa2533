package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

// exportFlags are export's flags.
type exportFlags struct {
	session, category, name, app, from, to string
	file                                   string
	minSeq                                 uint64
	force, progress, noProgress            bool
}

func (c *cli) exportCommand() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export [--session ID | --category C [--name N]] [--app A] [--from T] [--to T] [-o FILE]",
		Short: "Export the events of a session, a category or a time range as NDJSON, to stdout or FILE (read key)",
		Long: `Export every event a query selects (as eyectl events, without a limit) as
NDJSON, one event a line exactly as the server returns it, oldest first:
streamed by the server (Accept: application/x-ndjson), not paged.

Here -o (--output) is the FILE to write, not the output format: without it the
events go to stdout. A FILE is written under a temporary name and renamed once
the export is complete, so a failed export leaves no FILE behind; it must not
exist, unless --force. A progress bar (events written) is drawn on stderr when
it is a terminal, or with --progress; a summary line ends an export to FILE.

An answer cut short (a node stopping, a lost connection) is resumed where it
stopped, on another --server if need be, without doubling or losing an event;
after --retries resumptions that got nothing further, eyectl gives up (exit 3)
and says how far it got.`,
		Example: `  eyectl export --session e2085be5-9137-4e4e-80b5-f1ffddc25423 > session.ndjson
  eyectl export --category "page interaction" --name pageview --from 2021-01-01 --to 2021-02-01 -o jan.ndjson
  eyectl export --app shop-web --from -1d --progress | gzip > last-day.ndjson.gz`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.export(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.session, "session", "", "the session id")
	fl.StringVar(&f.category, "category", "", "the event category")
	fl.StringVar(&f.name, "name", "", "the event name (needs --category)")
	fl.StringVar(&f.app, "app", "", "only events sent by this app")
	fl.StringVar(&f.from, "from", "", "only events from this time (inclusive)")
	fl.StringVar(&f.to, "to", "", "only events before this time (exclusive)")
	fl.Uint64Var(&f.minSeq, "min-seq", 0, "wait until the node has indexed this seq before exporting")
	// It shadows the global --output (a format): an export is NDJSON.
	fl.StringVarP(&f.file, "output", "o", "", "the `FILE` to write (default: stdout)")
	fl.BoolVar(&f.force, "force", false, "replace FILE if it exists")
	fl.BoolVar(&f.progress, "progress", false, "draw the progress bar on stderr even when it is not a terminal")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no progress bar, even on a terminal")
	return cmd
}

// exportSummary is what an export to a FILE prints at the end.
type exportSummary struct {
	File    string  `json:"file"`
	Events  int64   `json:"events"`
	Bytes   int64   `json:"bytes"`
	LastSeq uint64  `json:"last_seq,omitempty"`
	Resumed int     `json:"resumed,omitempty"`
	Seconds float64 `json:"seconds"`
}

func (c *cli) export(ctx context.Context, f exportFlags) error {
	if f.session != "" && (f.category != "" || f.name != "" || f.app != "") {
		return usageErrf("--session cannot be combined with --category, --name or --app: a session export holds every app's events of that session")
	}
	if f.name != "" && f.category == "" {
		return usageErrf("--name needs --category: an event type is category + name")
	}
	if f.progress && f.noProgress {
		return usageErrf("--progress and --no-progress: give one")
	}
	from, to, err := timeRange(f.from, f.to)
	if err != nil {
		return err
	}
	q := client.ExportQuery{SessionID: f.session, Category: f.category, Name: f.name, App: f.app, From: from, To: to, MinSeq: f.minSeq}
	cl, err := c.newClient(nil)
	if err != nil {
		return err
	}
	defer closeClient(cl)
	var dst io.Writer = c.stdout
	var out *exportFile
	if f.file != "" && f.file != "-" {
		if out, err = createExportFile(f.file, f.force); err != nil {
			return err
		}
		defer out.discard()
		dst = out.f
	}
	bw := bufio.NewWriterSize(dst, 256<<10)
	w := &countingWriter{w: bw}
	if f.progress || !f.noProgress && isTerminal(c.stderr) {
		w.bar = newBar(c.stderr, -1, "export: events written", progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"), progressbar.OptionSpinnerType(14))
	}
	start := time.Now()
	res, err := cl.Export(ctx, q, w)
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("export: write: %w", ferr)
	}
	if w.bar != nil {
		w.bar.Finish()
	}
	if err != nil {
		if out != nil {
			return fmt.Errorf("%w; nothing was written to %s", err, f.file)
		}
		return err
	}
	if out == nil {
		return nil
	}
	if err := out.commit(); err != nil {
		return err
	}
	sum := exportSummary{File: f.file, Events: res.Events, Bytes: res.Bytes, LastSeq: res.LastSeq, Resumed: res.Resumed,
		Seconds: time.Since(start).Seconds()}
	if c.format() == "table" {
		fmt.Fprintf(c.stdout, "wrote %s: %d events, %d bytes in %s\n", f.file, res.Events, res.Bytes, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return writeNDJSON(c.stdout, sum)
}

// countingWriter counts the lines Export writes (one per Write) on the
// progress bar.
type countingWriter struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	if cw.bar != nil && err == nil {
		cw.bar.Add(1)
	}
	return n, err
}

// exportFile is an export's FILE, written under a temporary name until
// commit renames it.
type exportFile struct {
	path string
	f    *os.File
	done bool
}

func createExportFile(path string, force bool) (*exportFile, error) {
	if _, err := os.Stat(path); err == nil && !force {
		return nil, usageErrf("%s exists: give another FILE, or --force to replace it", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, usageErr(fmt.Errorf("export file: %w", err))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-")
	if err != nil {
		return nil, usageErr(fmt.Errorf("export file: %w", err))
	}
	return &exportFile{path: path, f: f}, nil
}

func (e *exportFile) commit() error {
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := e.f.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(e.f.Name(), e.path); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	e.done = true
	return nil
}

// discard removes the temporary file unless commit renamed it.
func (e *exportFile) discard() {
	if !e.done {
		e.f.Close()
		os.Remove(e.f.Name())
	}
}
