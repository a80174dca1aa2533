package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/cobra"

	"github.com/theeye/theeye"
	eyelog "github.com/theeye/theeye/log"
	"github.com/theeye/theeye/raftnode"
)

// restoreConfig is what `theeye restore` is configured by.
type restoreConfig struct {
	From          string
	DataDir       string
	NodeID        string
	Raft          string
	AdvertiseRaft string
	ClusterKey    string
	LogLevel      string
	LogFormat     string
}

// newRestoreCommand is `theeye restore`: a backup into the data dir of a
// new one-node cluster (raftnode.Restore), offline.
func newRestoreCommand() *cobra.Command {
	d := DefaultConfig()
	cfg := restoreConfig{DataDir: d.DataDir, NodeID: d.NodeID, Raft: d.Raft, LogLevel: "warn", LogFormat: "text"}
	cmd := &cobra.Command{
		Use:   "restore --from FILE --data-dir DIR",
		Short: "Offline: turn a backup (GET /v1/backup, eyectl backup) into the data dir of a new one-node cluster",
		Long: `Turn a backup into the data dir of a new cluster of one node, which theeye serve
--data-dir DIR runs with the backup's events under the same seqs, its apps, keys,
schemas, cluster config and revalidation requests; other nodes join it as usual.

The whole file is checked (header, every frame's CRC, the trailer's SHA-256)
while it is written into a temporary dir next to DIR, which is renamed to DIR only
once everything checked out: a truncated or damaged file leaves nothing behind.
DIR must not exist or be empty.

The node's id is --node-id; its Raft address in the new configuration is
--advertise-raft, else --raft: the first theeye serve must run with the same.
The cluster key is new (DIR/cluster.key) unless --cluster-key is given; the
admin key and every other key are the source cluster's. Every flag can also be
set as THEEYE_<FLAG>, as for serve.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestore(cmd.OutOrStdout(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.From, "from", "", "the backup file (eyectl backup FILE, or GET /v1/backup)")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the data dir to create (must not exist or be empty)")
	f.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "the id of the restored node, the new cluster's only voter")
	f.StringVar(&cfg.Raft, "raft", cfg.Raft, "the Raft address the node will listen on, as given to serve")
	f.StringVar(&cfg.AdvertiseRaft, "advertise-raft", "", "the Raft address other nodes will dial, as given to serve, when it differs from --raft")
	f.StringVar(&cfg.ClusterKey, "cluster-key", "", "the new cluster's key (default: a new one, written to <data-dir>/cluster.key)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	return cmd
}

// runRestore restores cfg.From into a temporary dir next to cfg.DataDir,
// renames it into place once everything checked out, and prints what it
// restored and what to do next.
func runRestore(w io.Writer, cfg restoreConfig) error {
	logger, err := newLogger(Config{LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat})
	if err != nil {
		return err
	}
	if cfg.From == "" {
		return errors.New("restore refused: --from FILE is required: the backup to restore")
	}
	dir := filepath.Clean(cfg.DataDir)
	if err := checkRestoreTarget(dir); err != nil {
		return err
	}
	f, err := os.Open(cfg.From)
	if err != nil {
		return fmt.Errorf("restore refused: --from: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	raftAddr := cfg.AdvertiseRaft
	if raftAddr == "" {
		raftAddr = cfg.Raft
	}
	rep, err := raftnode.Restore(raftnode.RestoreConfig{From: bufio.NewReaderSize(f, 1<<20), Dir: filepath.Join(tmp, "raft"),
		LogDir: filepath.Join(tmp, "log"), NodeID: cfg.NodeID, RaftAddr: raftAddr, Logger: logger})
	switch {
	case errors.Is(err, raftnode.ErrBadBackup):
		return fmt.Errorf("restore refused: %s: %w; nothing was written to %s", cfg.From, err, dir)
	case err != nil:
		return fmt.Errorf("restore %s: %w; nothing was written to %s", cfg.From, err, dir)
	}
	keyFrom := "given by --cluster-key (it is not written to the data dir: give it to theeye serve too)"
	if cfg.ClusterKey == "" {
		if _, err := newSecret("eye_cluster_", filepath.Join(tmp, "cluster.key")); err != nil {
			return fmt.Errorf("restore: generate the cluster key: %w", err)
		}
		keyFrom = "a new one, in " + filepath.Join(dir, "cluster.key") + " (a backup holds no cluster key)"
	}
	if err := eyelog.SyncDir(vfs.Default, tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// An empty DIR goes first (os.Remove refuses one that is not empty);
	// the rename fails should anything have taken its place meanwhile.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore refused: --data-dir %s: %w; nothing was written to it", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("restore: move the restored dir into place: %w; nothing was written to %s", err, dir)
	}
	done = true
	if err := eyelog.SyncDir(vfs.Default, filepath.Dir(dir)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	printRestoreReport(w, cfg, dir, raftAddr, keyFrom, rep)
	return nil
}

// checkRestoreTarget refuses a data dir that holds anything.
func checkRestoreTarget(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("restore refused: --data-dir: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("restore refused: --data-dir %s is not empty: restore into a new dir (the restored node is a new cluster)", dir)
	}
	return nil
}

func printRestoreReport(w io.Writer, cfg restoreConfig, dir, raftAddr, keyFrom string, rep raftnode.RestoreReport) {
	st := rep.State
	admins, versions := 0, 0
	for _, k := range st.Keys {
		if k.Has(theeye.ScopeAdmin) && !k.Revoked {
			admins++
		}
	}
	for _, vs := range st.Schemas {
		versions += len(vs)
	}
	fmt.Fprintf(w, "Restored %s into %s: a new one-node cluster.\n", cfg.From, dir)
	fmt.Fprintf(w, "  backup:        Raft index %d, term %d, taken %s\n", rep.RaftIndex, rep.RaftTerm, rep.TakenAt.Format("2006-01-02T15:04:05.000Z07:00"))
	if rep.Events() == 0 {
		fmt.Fprintf(w, "  events:        none (the next takes seq %d)\n", rep.LastSeq+1)
	} else {
		fmt.Fprintf(w, "  events:        seqs %d to %d (%d events in %d frames)\n", rep.FirstSeq, rep.LastSeq, rep.Events(), rep.Frames)
	}
	fmt.Fprintf(w, "  state:         %d apps, %d keys (%d live admin), %d schema versions, %d config versions, %d revalidation requests\n",
		len(st.Apps), len(st.Keys), admins, versions, len(st.Configs), len(st.Revalidations))
	fmt.Fprintf(w, "  node id:       %s (the only voter)\n", rep.NodeID)
	fmt.Fprintf(w, "  raft address:  %s (in the configuration: the first theeye serve must listen or advertise there)\n", raftAddr)
	fmt.Fprintf(w, "  cluster key:   %s\n", keyFrom)
	fmt.Fprintf(w, "  keys:          the source cluster's: its admin key and every key it had work here (the backup holds their hashes, never a secret)\n")
	serve := []string{"theeye serve --data-dir " + dir, "--node-id " + rep.NodeID, "--raft " + cfg.Raft}
	if cfg.AdvertiseRaft != "" {
		serve = append(serve, "--advertise-raft "+cfg.AdvertiseRaft)
	}
	if cfg.ClusterKey != "" {
		serve = append(serve, "--cluster-key <the key>")
	}
	fmt.Fprintf(w, `
Next:
  1. Start it: %s (and your other flags)
     It elects itself, and builds its index from the events on its first start: /readyz answers 200
     once the index is within --ready-lag of the last seq.
  2. Join other nodes, each on an empty data dir:
       theeye serve --node-id <new id> --join <this node's HTTP address> --cluster-key <the key above> ...
  3. It is a new cluster holding the source's data: never join it and the source's nodes to each other.
`, strings.Join(serve, " "))
}
