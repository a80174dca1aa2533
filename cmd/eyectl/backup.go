package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

func (c *cli) backupCommand() *cobra.Command {
	var force, noProgress bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Download a backup of the cluster's whole state into FILE, checked as it is written (admin key)",
		Long: `Download a backup of the cluster's whole state (GET /v1/backup) into FILE: every
event with its seq, the apps, the keys (hashes), the schemas, the cluster config
and the revalidation requests, as the node asked held them at one Raft index.
The node takes a Raft snapshot of itself for it; ingest goes on meanwhile. Any
node will do: ask a follower to spare the leader the reading.

The file is checked as it is written (its header, its length, the SHA-256 its
trailer holds) and written under a temporary name, renamed to FILE only once it
verified: a download that is cut or damaged leaves no FILE behind. FILE must not
exist, unless --force. theeye restore --from FILE --data-dir DIR turns it into a
new one-node cluster.`,
		Example: `  eyectl backup theeye-$(date +%F).backup --key "$ADMIN_KEY" --server http://eye2:8080`,
		Args:    exactArgs(1, "the FILE to write the backup to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.backup(cmd.Context(), args[0], force, noProgress)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	return cmd
}

// backupSummary is what backup prints at the end (as JSON with -o json).
type backupSummary struct {
	File      string  `json:"file"`
	Bytes     int64   `json:"bytes"`
	RaftIndex uint64  `json:"raft_index"`
	FirstSeq  uint64  `json:"first_seq"`
	LastSeq   uint64  `json:"last_seq"`
	Seconds   float64 `json:"seconds"`
}

func (c *cli) backup(ctx context.Context, path string, force, noProgress bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return usageErrf("%s exists: give another FILE, or --force to replace it", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return usageErr(fmt.Errorf("backup file: %w", err))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-")
	if err != nil {
		return usageErr(fmt.Errorf("backup file: %w", err))
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	cl, err := c.newClient(nil)
	if err != nil {
		return err
	}
	defer closeClient(cl)
	out := &backupFile{f: f}
	if !noProgress && isTerminal(c.stderr) {
		out.bar = newBar(c.stderr, -1, "backup", progressbar.OptionShowBytes(true))
	}
	start := time.Now()
	n, err := cl.Backup(ctx, out)
	if out.bar != nil {
		out.bar.Finish()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		if errors.Is(err, client.ErrBadBackup) {
			return fmt.Errorf("%w; nothing was written to %s: retry", err, path)
		}
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done = true
	sum := backupSummary{File: path, Bytes: n, RaftIndex: out.info.RaftIndex, FirstSeq: out.info.FirstSeq, LastSeq: out.info.LastSeq,
		Seconds: time.Since(start).Seconds()}
	if c.format() == "table" {
		fmt.Fprintf(c.stdout, "wrote %s: %d bytes in %s, verified; the state at Raft index %d, seqs %d to %d\n",
			path, n, time.Since(start).Round(time.Millisecond), sum.RaftIndex, sum.FirstSeq, sum.LastSeq)
		return nil
	}
	return writeNDJSON(c.stdout, sum)
}

// backupFile is where a backup goes: the file, and the progress bar, which
// the size the server announced sizes.
type backupFile struct {
	f    *os.File
	bar  *progressbar.ProgressBar // nil without a terminal
	info client.BackupInfo
}

func (b *backupFile) BackupStarted(info client.BackupInfo) {
	b.info = info
	if b.bar != nil {
		b.bar.ChangeMax64(info.Size)
		b.bar.Describe(fmt.Sprintf("backup at Raft index %d (seqs %d to %d)", info.RaftIndex, info.FirstSeq, info.LastSeq))
	}
}

func (b *backupFile) Write(p []byte) (int, error) {
	n, err := b.f.Write(p)
	if b.bar != nil {
		b.bar.Add(n)
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", b.f.Name(), err)
	}
	return n, nil
}
