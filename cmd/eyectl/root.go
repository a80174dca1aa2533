package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/theeye/theeye/client"
)

// Exit codes, as `eyectl --help` lists them.
const (
	exitOK          = 0
	exitUsage       = 1 // bad flag, argument, time or input file
	exitRefused     = 2 // the server refused the request (4xx), or refused some events
	exitUnreachable = 3 // the server could not be reached, or failed (5xx, 503 after retries)
	exitInterrupted = 130
)

const defaultServer = "http://127.0.0.1:8080"

// cli is one run of eyectl: its streams, environment and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	servers []string
	key     string
	output  string
	retries int
	ca      string // PEM file of the CA that signed the server's certificate
}

// run executes eyectl with args and returns the exit code; errors are
// printed on stderr, one line each.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code, msg := c.explain(err)
	fmt.Fprintln(stderr, "eyectl: "+msg)
	return code
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "eyectl",
		Short: "The command line of The Eye: send events, query them, manage apps, keys, schemas and the cluster",
		Long: `eyectl talks to The Eye over its HTTP API.

Configuration: --server (or THEEYE_SERVER; several, comma separated, are tried
in turn; default ` + defaultServer + `) and --key (or THEEYE_KEY): an ingest key to
send, a read key to query, the admin key for apps, keys, schemas and cluster.

Output: an aligned table on a terminal, NDJSON in a pipe; --output json, ndjson
or table chooses.

Times (--from, --to): RFC 3339 (2021-01-01T09:15:27Z), "2021-01-01 09:15:27"
(UTC), a date (2021-01-01, midnight UTC), "now", or a duration before now
(-15m, -36h, -7d). --from is inclusive, --to exclusive.

Exit codes:
  0    success
  1    usage: a bad flag, argument, time or input file
  2    the server refused the request (4xx: bad key, missing scope, bad
       parameter, conflict), or refused some of the events sent
  3    the server could not be reached, or failed (5xx, or 503 after retries)
  130  interrupted`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return c.applyEnv(cmd) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	f := root.PersistentFlags()
	f.StringSliceVarP(&c.servers, "server", "s", nil, "base URL of a theeye node; repeat or comma-separate for failover (env THEEYE_SERVER; default "+defaultServer+")")
	f.StringVarP(&c.key, "key", "k", "", "API key (env THEEYE_KEY)")
	f.StringVarP(&c.output, "output", "o", "", "output format: table, json or ndjson (default: table on a terminal, ndjson otherwise)")
	f.IntVar(&c.retries, "retries", 2, "how many times a failed request is retried (network errors, 429, 503)")
	f.StringVar(&c.ca, "ca", "", "PEM file of the CA that signed the server's certificate, for https:// servers run with --tls-ca (env THEEYE_CA)")
	root.AddCommand(c.sendCommand(), c.eventsCommand(), c.errorsCommand(), c.statsCommand(), c.tailCommand(), c.statusCommand(), c.revalidateCommand(),
		c.appsCommand(), c.keysCommand(), c.schemasCommand(), c.clusterCommand(), c.backupCommand(),
		c.exportCommand(), c.eraseCommand(), c.deletionCommand(), c.configCommand())
	return root
}

// applyEnv fills --server and --key from the environment when not given,
// and checks --output.
func (c *cli) applyEnv(cmd *cobra.Command) error {
	flags := cmd.Flags()
	if !flags.Changed("server") {
		if v := c.getenv("THEEYE_SERVER"); v != "" {
			c.servers = splitList(v)
		}
	}
	if len(c.servers) == 0 {
		c.servers = []string{defaultServer}
	}
	if !flags.Changed("key") {
		c.key = c.getenv("THEEYE_KEY")
	}
	if !flags.Changed("ca") {
		c.ca = c.getenv("THEEYE_CA")
	}
	switch c.output {
	case "", "table", "json", "ndjson":
	default:
		return usageErrf("--output %q: want table, json or ndjson", c.output)
	}
	if c.retries < 0 {
		return usageErrf("--retries %d: want 0 or more", c.retries)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newClient returns a client for the global flags; tune adjusts its config.
func (c *cli) newClient(tune func(*client.Config)) (*client.Client, error) {
	cfg := client.Config{
		Servers:    c.servers,
		Key:        c.key,
		MaxRetries: c.retries,
		RetryMax:   2 * time.Second,
		UserAgent:  "eyectl/1",
	}
	if c.retries == 0 {
		cfg.MaxRetries = -1
	}
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, usageErrf("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrf("--ca %s holds no PEM certificate", c.ca)
		}
		cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if tune != nil {
		tune(&cfg)
	}
	cl, err := client.New(cfg)
	if err != nil {
		return nil, usageErr(err)
	}
	return cl, nil
}

// closeClient releases a client used only for synchronous calls.
// withClient runs fn with a client configured from the flags, closed after.
func (c *cli) withClient(fn func(cl *client.Client) error) error {
	cl, err := c.newClient(nil)
	if err != nil {
		return err
	}
	defer closeClient(cl)
	return fn(cl)
}

func closeClient(cl *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl.Close(ctx)
}

// format returns the output format: the flag, else table on a terminal and
// ndjson otherwise.
func (c *cli) format() string {
	if c.output != "" {
		return c.output
	}
	if isTerminal(c.stdout) {
		return "table"
	}
	return "ndjson"
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usageError is a mistake in the command line or its input: exit 1.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err} }

func usageErrf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// explain maps an error to an exit code and a one-line message saying what
// to do.
func (c *cli) explain(err error) (int, string) {
	var ue *usageError
	var ce *client.Error
	switch {
	case errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted"
	case errors.As(err, &ue):
		return exitUsage, oneLine(ue.Error()) + " (see eyectl --help)"
	case errors.Is(err, client.ErrExportCut):
		return exitUnreachable, oneLine(err.Error()) + "; what was written is the start of the export: rerun it, or resume with --from"
	case errors.As(err, &ce):
		return c.explainStatus(err, ce)
	case errors.Is(err, client.ErrBadBackup):
		return exitUnreachable, oneLine(err.Error())
	}
	prefix := ""
	var ps *partialSendError
	if errors.As(err, &ps) {
		prefix = ps.summary() + ": "
	}
	if addr, reason, ok := networkError(err); ok {
		return exitUnreachable, fmt.Sprintf("%scannot reach %s: %s; is theeye running? set --server or THEEYE_SERVER", prefix, addr, reason)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return exitUnreachable, oneLine(err.Error()) + "; the server is slow or unreachable"
	}
	if ps != nil {
		return exitRefused, oneLine(err.Error())
	}
	return exitUsage, oneLine(err.Error())
}

func (c *cli) explainStatus(err error, ce *client.Error) (int, string) {
	prefix := ""
	var ps *partialSendError
	if errors.As(err, &ps) {
		prefix = ps.summary() + ": "
	}
	what := fmt.Sprintf("%d %s: %s", ce.Status, ce.Code, ce.Message)
	// The field or parameter the server blames, when its sentence does not
	// name it.
	for _, k := range []string{"field", "parameter"} {
		if f, ok := ce.Details[k].(string); ok && f != "" && !strings.Contains(ce.Message, f) {
			what += " [" + k + " " + f + "]"
		}
	}
	switch {
	case ce.Status == 401:
		return exitRefused, prefix + "the server refused the key (" + what + "); set --key or THEEYE_KEY to a valid key"
	case ce.Status == 403:
		return exitRefused, prefix + "the key lacks the scope for this (" + what + "); use an ingest key to send, a read key to query, the admin key to manage"
	case ce.Status == 404 && strings.Contains(ce.Message, "no route"):
		return exitRefused, prefix + "this server does not have that route (" + what + "); it may be older than eyectl"
	case ce.Status >= 500:
		return exitUnreachable, prefix + "the server failed (" + what + " from " + ce.Server + "); retry later or check its log"
	case ce.Status == 429 && ce.Code == "overloaded":
		return exitUnreachable, prefix + "the cluster is pushing back: it is indexing behind what it acknowledged (" + what + "); retry later, use --rate, or more --retries"
	case ce.Status == 429:
		return exitUnreachable, prefix + "the server is rate limiting this key (" + what + "); retry later or use --rate"
	}
	return exitRefused, prefix + "the server refused the request (" + oneLine(what) + ")"
}

// networkError finds a transport failure in err: the server's address and
// the reason in a few words ("connection refused").
func networkError(err error) (addr, reason string, ok bool) {
	var ue *url.Error
	var ne net.Error
	if !errors.As(err, &ue) && !errors.As(err, &ne) {
		return "", "", false
	}
	if ue != nil {
		if u, perr := url.Parse(ue.URL); perr == nil {
			addr = u.Scheme + "://" + u.Host
		}
	}
	var errno syscall.Errno
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &errno):
		reason = errno.Error()
	case errors.As(err, &dns):
		reason = "no such host " + dns.Name
	case errors.As(err, &op) && op.Err != nil:
		reason = op.Err.Error()
	case errors.As(err, &ne) && ne.Timeout():
		reason = "timed out"
	default:
		reason = "the connection failed"
		if ue != nil {
			reason = ue.Err.Error()
		}
	}
	return addr, oneLine(reason), true
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}
