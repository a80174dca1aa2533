package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/theeye/theeye/api"
)

// Config is everything `theeye serve` is configured by.
type Config struct {
	NodeID         string
	DataDir        string
	HTTP           string
	Raft           string
	AdvertiseHTTP  string
	AdvertiseRaft  string
	Bootstrap      bool
	Join           string
	AdminKey       string
	ClusterKey     string
	UnknownTypes   string
	MaxBody        int64
	MaxEvent       int
	MaxBatchEvents int
	MaxPageBytes   int
	MaxIndexLag    uint64
	MaxIndexDelay  time.Duration
	MinFreeDisk    string // bytes with an optional KiB/MiB/GiB suffix; "": the default
	MaxClockSkew   time.Duration
	MaxEventAge    time.Duration
	Retention      time.Duration
	ReadyLag       uint64
	Codec          string
	CacheSize      int64
	MemoryLimit    int64
	LogLevel       string
	LogFormat      string
	PrintAdminKey  bool
	TLSCert        string
	TLSKey         string
	TLSCA          string
	PProf          string

	// Streams (GET /v1/stream): how many at once, and how long a write to
	// a reader may take before it is dropped.
	MaxStreams         int
	StreamWriteTimeout time.Duration

	// HTTP connection bounds, hidden: tests shorten them to play slow
	// clients.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	// StreamKeepAlive, hidden: tests shorten the stream's keep-alive.
	StreamKeepAlive time.Duration

	// LogSegmentSize, hidden: tests use small segments so that retention
	// has whole segments to drop.
	LogSegmentSize int64

	// Raft tuning, hidden: tests use them to force snapshots.
	RaftSnapshotThreshold uint64
	RaftTrailingLogs      uint64
	RaftSnapshotInterval  time.Duration
}

// DefaultConfig is the embedded default: a single node on loopback.
func DefaultConfig() Config {
	return Config{
		NodeID:         "n1",
		DataDir:        "./theeye-data",
		HTTP:           "127.0.0.1:8080",
		Raft:           "127.0.0.1:8081",
		UnknownTypes:   "accept",
		MaxBody:        8 << 20,
		MaxEvent:       64 << 10,
		MaxBatchEvents: 10000,
		MaxIndexLag:    1_000_000,
		MaxIndexDelay:  2 * time.Second,
		MaxPageBytes:   4 << 20,
		MaxClockSkew:   5 * time.Minute,
		ReadyLag:       100000,
		Codec:          "zstd",
		CacheSize:      64 << 20,
		LogLevel:       "info",
		LogFormat:      "text",

		MaxStreams:         api.DefaultMaxStreams,
		StreamWriteTimeout: api.DefaultStreamWriteTimeout,
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "theeye",
		Short:         "The Eye: an event store for user-behaviour events",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newRecoverCommand(), newRestoreCommand(), newVersionCommand(), newHealthCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "theeye", version)
		},
	}
}

// newHealthCommand checks a node's /readyz: the container healthcheck of
// deploy/ (a FROM scratch image has no curl).
func newHealthCommand() *cobra.Command {
	url, ca := "http://127.0.0.1:8080", ""
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the node at --url is ready (GET /readyz), 1 otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/readyz", nil)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			client := &http.Client{}
			if ca != "" {
				pem, err := os.ReadFile(ca)
				if err != nil {
					return fmt.Errorf("health: --ca: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("health: --ca %s holds no PEM certificate", ca)
				}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("not ready: %s", strings.TrimSpace(string(body)))
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", url, "the node's HTTP address (https:// for a node run with --tls-cert)")
	cmd.Flags().StringVar(&ca, "ca", "", "PEM file of the CA that signed the node's certificate (for https://)")
	return cmd
}

// version is set by the linker (-X main.version=...); never changed at run time.
var version = "dev"

func newServeCommand() *cobra.Command {
	cfg := DefaultConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node",
		Long: `Run a node of The Eye. With no flags: a single-node cluster on 127.0.0.1:8080,
data in ./theeye-data. Every flag can also be set as THEEYE_<FLAG> (upper snake
case), e.g. THEEYE_DATA_DIR=/var/lib/theeye.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			m := NewMain(cfg)
			return m.RunUntilDone(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "unique, stable id of this node")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "where this node keeps its data")
	f.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP listen address (port 0 picks a free one)")
	f.StringVar(&cfg.Raft, "raft", cfg.Raft, "Raft listen address (port 0 picks a free one)")
	f.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "HTTP address other nodes and clients reach this node at, when it differs from --http")
	f.StringVar(&cfg.AdvertiseRaft, "advertise-raft", "", "Raft address other nodes dial, when it differs from --raft")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new cluster with this node as its only voter (implied without --join on a new data dir)")
	f.StringVar(&cfg.Join, "join", "", "HTTP address of any member of the cluster to join")
	f.StringVar(&cfg.AdminKey, "admin-key", "", "admin key (generated on the first start when not given, and written to <data-dir>/admin.key)")
	f.StringVar(&cfg.ClusterKey, "cluster-key", "", "the cluster's shared secret, which nodes prove (never send) to each other (generated in <data-dir>/cluster.key on a new cluster when not given)")
	f.StringVar(&cfg.UnknownTypes, "unknown-types", cfg.UnknownTypes, "events of a type with no schema: accept or reject")
	f.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "largest request body in bytes (after gzip)")
	f.IntVar(&cfg.MaxEvent, "max-event", cfg.MaxEvent, "largest event in bytes")
	f.IntVar(&cfg.MaxBatchEvents, "max-batch-events", cfg.MaxBatchEvents, "most events in one ingest request (more: 413 too_many_events)")
	f.Uint64Var(&cfg.MaxIndexLag, "max-index-lag", cfg.MaxIndexLag, "ingest is 429 overloaded while a ready node's index is more than this many events behind the leader")
	f.DurationVar(&cfg.MaxIndexDelay, "max-index-delay", cfg.MaxIndexDelay, "ingest is 429 overloaded while a ready node has not indexed an event the leader applied this long ago")
	f.StringVar(&cfg.MinFreeDisk, "min-free-disk", "", "writes are 507 while the data dir's file system has less free (bytes, or with KiB, MiB, GiB; default: 1GiB or 5% of it, the smaller)")
	f.IntVar(&cfg.MaxPageBytes, "max-page-bytes", cfg.MaxPageBytes, "a query page ends, with a next_cursor, once its events reach this many bytes")
	f.DurationVar(&cfg.MaxClockSkew, "max-clock-skew", cfg.MaxClockSkew, "how far past received_at an event timestamp may be")
	f.DurationVar(&cfg.MaxEventAge, "max-event-age", 0, "how far before received_at an event timestamp may be (0: no limit)")
	f.DurationVar(&cfg.Retention, "retention", 0, "how long events are kept after their received_at (0: for ever); seeds the cluster config of a new cluster")
	f.Uint64Var(&cfg.ReadyLag, "ready-lag", cfg.ReadyLag, "/readyz fails while the indexer is more than this many events behind")
	f.IntVar(&cfg.MaxStreams, "max-streams", cfg.MaxStreams, "most streams (GET /v1/stream) this node serves at once; more are 503")
	f.DurationVar(&cfg.StreamWriteTimeout, "stream-write-timeout", cfg.StreamWriteTimeout, "a stream reader that takes no data for this long is dropped")
	f.StringVar(&cfg.Codec, "codec", cfg.Codec, "compression of Raft entries and log frames: none, s2 or zstd")
	f.Int64Var(&cfg.CacheSize, "cache-size", cfg.CacheSize, "index block cache in bytes")
	f.Int64Var(&cfg.MemoryLimit, "memory-limit", 0, "Go soft memory limit in bytes (0: GOMEMLIMIT if set, else 64 MiB, plus the Pebble caches in a build without cgo; negative: none)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	f.BoolVar(&cfg.PrintAdminKey, "print-admin-key", false, "print the admin key from <data-dir>/admin.key at start (development)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate: serve HTTP over TLS and use it for Raft (mutual TLS)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.PProf, "pprof", "", "serve Go's pprof profiles on this address (off by default; bind it to loopback)")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "PEM CA that signed every node's certificate (verifies peers and forwarded requests)")
	f.Uint64Var(&cfg.RaftSnapshotThreshold, "raft-snapshot-threshold", 0, "Raft entries between snapshots (0: the default)")
	f.Uint64Var(&cfg.RaftTrailingLogs, "raft-trailing-logs", 0, "Raft entries kept after a snapshot (0: the default)")
	f.DurationVar(&cfg.RaftSnapshotInterval, "raft-snapshot-interval", 0, "how often Raft checks whether to snapshot (0: the default)")
	f.DurationVar(&cfg.HTTPReadHeaderTimeout, "http-read-header-timeout", 0, "bound on reading a request's headers (0: 10s)")
	f.DurationVar(&cfg.HTTPReadTimeout, "http-read-timeout", 0, "bound on reading a whole request (0: 60s)")
	f.DurationVar(&cfg.HTTPWriteTimeout, "http-write-timeout", 0, "bound on writing a whole answer, exports excepted (0: 2m)")
	f.MarkHidden("http-read-header-timeout")
	f.MarkHidden("http-read-timeout")
	f.MarkHidden("http-write-timeout")
	f.DurationVar(&cfg.StreamKeepAlive, "stream-keepalive", 0, "a stream sends a comment after this long without an event (0: 15s)")
	f.MarkHidden("stream-keepalive")
	f.Int64Var(&cfg.LogSegmentSize, "log-segment-size", 0, "bytes of one log/ segment file (0: 64 MiB)")
	f.MarkHidden("log-segment-size")
	f.MarkHidden("raft-snapshot-interval")
	f.MarkHidden("raft-snapshot-threshold")
	f.MarkHidden("raft-trailing-logs")
	return cmd
}

// applyEnv sets every flag not given on the command line from
// THEEYE_<FLAG>, so flags win over the environment.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "THEEYE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}
