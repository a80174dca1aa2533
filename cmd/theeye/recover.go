package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/theeye/theeye/raftnode"
)

// recoverConfig is what `theeye recover` is configured by.
type recoverConfig struct {
	DataDir       string
	NodeID        string
	Raft          string
	AdvertiseRaft string
	DryRun        bool
	LogLevel      string
	LogFormat     string
}

// newRecoverCommand is `theeye recover`: the offline step that makes a
// survivor of a cluster that lost its quorum the only voter (raftnode.Recover).
func newRecoverCommand() *cobra.Command {
	cfg := recoverConfig{DataDir: DefaultConfig().DataDir, LogLevel: "warn", LogFormat: "text"}
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Offline: make this node the only voter of its cluster, once the cluster has lost its quorum for good",
		Long: `Make the node whose data dir this is the only voter of its cluster, keeping every
entry it holds: for a cluster that has lost a majority of its nodes for good and
so cannot elect a leader. Run it with the node stopped; then start the node with
theeye serve as before (it elects itself) and join new nodes to it.

The node id is --node-id, else the id the node recorded in its data dir, else the
member whose Raft address is --advertise-raft or --raft. Its Raft address in the
new configuration is --advertise-raft, else --raft, else the one it had.
--dry-run prints what it finds (to pick the most up-to-date survivor: the
highest last Raft entry) and changes nothing. Every flag can also be set as
THEEYE_<FLAG>, as for serve.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRecover(cmd.OutOrStdout(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the data dir of the node to recover (the one theeye serve ran with)")
	f.StringVar(&cfg.NodeID, "node-id", "", "the node's id (default: the one recorded in the data dir)")
	f.StringVar(&cfg.Raft, "raft", "", "the node's Raft address, as given to serve (default: the address it had)")
	f.StringVar(&cfg.AdvertiseRaft, "advertise-raft", "", "the Raft address other nodes dial, as given to serve")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "print what the data dir holds and what recover would do; change nothing")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	return cmd
}

// runRecover runs raftnode.Recover on cfg's data dir and prints what it
// did and what to do next.
func runRecover(w io.Writer, cfg recoverConfig) error {
	logger, err := newLogger(Config{LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat})
	if err != nil {
		return err
	}
	dir := cfg.DataDir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recover refused: --data-dir %s does not exist", dir)
	} else if err != nil {
		return fmt.Errorf("recover: --data-dir: %w", err)
	}
	rep, err := raftnode.Recover(raftnode.RecoverConfig{
		Dir:           filepath.Join(dir, "raft"),
		LogDir:        filepath.Join(dir, "log"),
		NodeID:        cfg.NodeID,
		RaftAddr:      cfg.Raft,
		AdvertiseRaft: cfg.AdvertiseRaft,
		DryRun:        cfg.DryRun,
		Logger:        logger,
	})
	switch {
	case errors.Is(err, raftnode.ErrNoCluster):
		return fmt.Errorf("recover refused: %w (is --data-dir %s the dir theeye serve ran with?)", err, dir)
	case errors.Is(err, raftnode.ErrInUse), errors.Is(err, raftnode.ErrUnknownNode):
		return fmt.Errorf("recover refused: %w", err)
	case err != nil:
		return fmt.Errorf("recover %s: %w (nothing was changed unless the replay had begun: running recover again is safe)", dir, err)
	}
	printRecoverReport(w, dir, rep)
	return nil
}

func printRecoverReport(w io.Writer, dir string, rep raftnode.RecoverReport) {
	if rep.DryRun {
		fmt.Fprintf(w, "Dry run, nothing changed: recovering %s would make node %s the only voter of its cluster.\n", dir, rep.NodeID)
	} else {
		fmt.Fprintf(w, "Recovered %s: node %s is now the only voter of its cluster.\n", dir, rep.NodeID)
	}
	from := map[string]string{"flag": "given by --node-id", "recorded": "recorded in the data dir", "address": "the member at the Raft address given"}[rep.NodeIDFrom]
	if rep.RecordedID != "" && rep.RecordedID != rep.NodeID {
		from += fmt.Sprintf("; the data dir records %s: check that --node-id is the id theeye serve runs with", rep.RecordedID)
	}
	fmt.Fprintf(w, "  node id:          %s (%s)\n", rep.NodeID, from)
	fmt.Fprintf(w, "  raft address:     %s (in the new configuration)\n", rep.RaftAddr)
	fmt.Fprintf(w, "  last raft entry:  index %d, term %d\n", rep.LastIndex, rep.LastTerm)
	if rep.DryRun {
		fmt.Fprintf(w, "  event log:        last seq %d (applied_seq; the replay adds the events of entries not applied yet)\n", rep.LastSeq)
	} else {
		fmt.Fprintf(w, "  event log:        last seq %d (applied_seq); %d events appended by the replay\n", rep.LastSeq, rep.Replayed)
	}
	fmt.Fprintf(w, "  members before:   %s\n", describeServers(rep.Members))
	verb := "removed"
	if rep.DryRun {
		verb = "to remove"
	}
	fmt.Fprintf(w, "  %-17s %s\n", verb+":", describeServers(rep.Removed))
	if len(rep.Forgotten) > 0 {
		fmt.Fprintf(w, "  addresses of %s dropped from the replicated state\n", strings.Join(rep.Forgotten, ", "))
	}
	fmt.Fprintln(w)
	if rep.DryRun {
		fmt.Fprintf(w, "Next: of several survivors, recover the one with the highest last raft entry (term, then index):\n  theeye recover --data-dir %s\n", dir)
		return
	}
	join := rep.HTTPAddr
	if join == "" {
		join = "<this node's HTTP address>"
	}
	key := fmt.Sprintf("the one in %s", filepath.Join(dir, "cluster.key"))
	if _, err := os.Stat(filepath.Join(dir, "cluster.key")); err != nil {
		key = "the one this node was given (--cluster-key or THEEYE_CLUSTER_KEY): give it again"
	}
	fmt.Fprintf(w, `Next:
  1. Start the node as before: theeye serve --data-dir %s --node-id %s, with the flags it ran with
     (a --join it had names a lost node: drop it; left in, the node only retries it in the background).
     It elects itself; /readyz answers 200 once it has.
  2. Join new nodes, each on an empty data dir:
       theeye serve --node-id <new id> --join %s --cluster-key <key> ...
     The cluster key is %s.
  3. Never start a removed node on its old data dir: it still holds the old configuration. Wipe the dir,
     then join it as a new node.
`, dir, rep.NodeID, join, key)
}

func describeServers(ss []raftnode.ServerInfo) string {
	if len(ss) == 0 {
		return "none"
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%s (raft %s)", s.ID, s.RaftAddr)
	}
	return strings.Join(parts, ", ")
}
