package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

// deletionPoll is how often a followed deletion is asked for its progress
// on each node.
const deletionPoll = 500 * time.Millisecond

func (c *cli) eraseCommand() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "erase SESSION_ID [--wait]",
		Short: "Erase every event of a session logged so far, on every node (admin key)",
		Long: `Erase a session (DELETE /v1/sessions/{id}): every event of it logged up to
now (the deletion's at_seq) leaves every query of every node, and its bytes
leave every node's data dir (log, index, Raft log, snapshots). Events of the
same session sent later are kept. Each node erases on its own; a node that is
down erases when it comes back.

Without --wait eyectl prints the deletion (its id, pending) and returns; with
--wait it asks every node of the cluster (GET /v1/deletions/{id}) until the
deletion is done on all of them, with a progress bar on a terminal, and prints
each node's state. eyectl deletion DEL_ID follows a deletion later.`,
		Example: `  eyectl erase e2085be5-9137-4e4e-80b5-f1ffddc25423 --wait --key "$ADMIN_KEY"
  eyectl erase e2085be5-9137-4e4e-80b5-f1ffddc25423 -o json   # then: eyectl deletion del_1042 --wait`,
		Args: exactArgs(1, "the SESSION_ID to erase"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(func(cl *client.Client) error {
				d, err := cl.EraseSession(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !wait {
					return printOne(c.format(), c.stdout, d, [][2]string{{"deletion", d.ID}, {"session", d.SessionID},
						{"at_seq", fmt.Sprint(d.AtSeq)}, {"status", d.Status + "   (follow it: eyectl deletion " + d.ID + " --wait)"}})
				}
				return c.followDeletion(cmd.Context(), cl, d.ID, true, timeout)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the deletion is done on every node, showing progress")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait, give up (exit 3) after this long")
	return cmd
}

func (c *cli) deletionCommand() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "deletion DEL_ID [--wait]",
		Short: "Show how far a session's erasure got on every node, or wait until it is done (admin key)",
		Long: `Ask every node of the cluster how far the deletion DEL_ID (what eyectl erase
printed) got there: pending, or done with the number of events it erased and
when. With --wait, ask again until it is done on every node.`,
		Example: `  eyectl deletion del_1042
  eyectl deletion del_1042 --wait --timeout 1h`,
		Args: exactArgs(1, "the DEL_ID eyectl erase printed"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(func(cl *client.Client) error {
				return c.followDeletion(cmd.Context(), cl, args[0], wait, timeout)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the deletion is done on every node, showing progress")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait, give up (exit 3) after this long")
	return cmd
}

// nodeDeletion is a deletion as one node sees it.
type nodeDeletion struct {
	Node          string    `json:"node"`
	HTTPAddr      string    `json:"http_addr,omitempty"`
	Status        string    `json:"status"` // pending, done, or unreachable
	EventsDeleted uint64    `json:"events_deleted"`
	DoneAt        time.Time `json:"done_at,omitzero"`
	Error         string    `json:"error,omitempty"`
}

// deletionReport is what eyectl erase --wait and eyectl deletion print.
type deletionReport struct {
	ID        string         `json:"id"`
	SessionID string         `json:"session_id"`
	AtSeq     uint64         `json:"at_seq"`
	Status    string         `json:"status"` // done once done on every node
	Nodes     []nodeDeletion `json:"nodes"`
}

// followDeletion asks every node for deletion id, until it is done on all
// of them when wait, and prints where it stands.
func (c *cli) followDeletion(ctx context.Context, cl *client.Client, id string, wait bool, timeout time.Duration) error {
	var bar *progressbar.ProgressBar
	if wait && isTerminal(c.stderr) {
		bar = newBar(c.stderr, -1, "erase "+id+": asking the nodes", progressbar.OptionShowCount())
		defer bar.Finish()
	}
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(deletionPoll)
	defer t.Stop()
	for {
		rep, err := deletionRound(ctx, cl, id)
		if err != nil {
			return err
		}
		done, pending := 0, []string{}
		for _, n := range rep.Nodes {
			if n.Status == client.DeletionDone {
				done++
			} else {
				pending = append(pending, n.Node+" "+n.Status)
			}
		}
		if bar != nil {
			bar.ChangeMax(len(rep.Nodes))
			bar.Set(done)
			bar.Describe(fmt.Sprintf("erase %s: done on %d of %d nodes (waiting for %s)", id, done, len(rep.Nodes), strings.Join(pending, ", ")))
		}
		if !wait || done == len(rep.Nodes) {
			return c.printDeletion(rep)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deletion %s is not done after %s on %s (follow it: eyectl deletion %s --wait): %w",
				id, timeout, strings.Join(pending, ", "), id, context.DeadlineExceeded)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// deletionRound asks each node of the cluster once. A node that has not
// applied the deletion yet (404) is pending; one that does not answer is
// unreachable. A deletion no node knows is the server's refusal.
func deletionRound(ctx context.Context, cl *client.Client, id string) (deletionReport, error) {
	rep := deletionReport{ID: id, Status: client.DeletionDone}
	nodes := []client.Node{{}} // the server the client talks to, when the cluster will not say
	if cs, err := cl.ClusterStatus(ctx); err == nil && len(cs.Nodes) > 0 {
		nodes = cs.Nodes
	} else if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	var notFound error
	for _, n := range nodes {
		nd := nodeDeletion{Node: n.ID, HTTPAddr: n.HTTPAddr}
		d, err := cl.DeletionOn(ctx, n.HTTPAddr, id)
		var ce *client.Error
		switch {
		case ctx.Err() != nil:
			return rep, ctx.Err()
		case errors.As(err, &ce) && ce.Status == 404 && ce.Code == "not_found":
			nd.Status = client.DeletionPending
			notFound = err
		case errors.As(err, &ce) && ce.Status < 500:
			return rep, err // a bad id, or a key without the admin scope: the same on every node
		case err != nil:
			nd.Status, nd.Error = "unreachable", oneLine(err.Error())
		default:
			rep.SessionID, rep.AtSeq = d.SessionID, d.AtSeq
			nd.Status, nd.EventsDeleted, nd.DoneAt = d.Status, d.EventsDeleted, d.DoneAt
		}
		if nd.Status != client.DeletionDone {
			rep.Status = client.DeletionPending
		}
		rep.Nodes = append(rep.Nodes, nd)
	}
	if rep.SessionID == "" && notFound != nil {
		return rep, notFound // no node knows it
	}
	return rep, nil
}

func (c *cli) printDeletion(rep deletionReport) error {
	switch c.format() {
	case "json", "ndjson":
		return printOne(c.format(), c.stdout, rep, nil)
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "deletion\t%s\nsession\t%s\nat_seq\t%d\nstatus\t%s\n\n", rep.ID, cell(rep.SessionID), rep.AtSeq, rep.Status)
	tw.Flush()
	_, err := lister[nodeDeletion]{format: "table", w: c.stdout, header: []string{"NODE", "STATUS", "EVENTS_DELETED", "DONE_AT", "ERROR"},
		row: func(n nodeDeletion) []string {
			return []string{n.Node, n.Status, fmt.Sprint(n.EventsDeleted), fmtTime(n.DoneAt), n.Error}
		}}.print(seqOf(rep.Nodes))
	return err
}

func (c *cli) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change the cluster's validation and retention policy (admin key)",
		Long: `The cluster config is cluster state, replicated through Raft: every node
judges events by the same policy. A change judges the events logged after it;
it is on every node once committed.`,
		Example: `  eyectl config get
  eyectl config set --retention 720h`,
	}
	get := &cobra.Command{
		Use:     "get",
		Short:   "Show the cluster config in force (GET /v1/config)",
		Example: `  eyectl config get --key "$ADMIN_KEY"` + "\n" + `  eyectl config get -o json --server http://eye2:8080`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withClient(func(cl *client.Client) error {
				cc, err := cl.ClusterConfig(cmd.Context())
				if err != nil {
					return err
				}
				return c.printConfig(cc)
			})
		},
	}
	cmd.AddCommand(get, c.configSetCommand())
	return cmd
}

func (c *cli) configSetCommand() *cobra.Command {
	var skew, age, unknown, retention string
	cmd := &cobra.Command{
		Use:   "set [--retention D] [--max-clock-skew D] [--max-event-age D] [--unknown-types accept|reject]",
		Short: "Change some fields of the cluster config, on every node (PUT /v1/config)",
		Long: `Change the fields given, keep the others, and print the whole new config.
Durations are Go durations (90s, 5m, 720h) or whole days (30d).

  --retention       how long events are kept after their received_at (0s: for ever)
  --max-clock-skew  how far in the future a timestamp may be (timestamp_in_future)
  --max-event-age   how old a timestamp may be (timestamp_too_old; 0s: no limit)
  --unknown-types   accept or reject (unknown_event_type) events without a schema`,
		Example: `  eyectl config set --retention 720h
  eyectl config set --max-clock-skew 2m --max-event-age 30d --unknown-types reject`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p client.ConfigPatch
			fl := cmd.Flags()
			for _, d := range []struct {
				flag string
				val  string
				dst  **time.Duration
			}{{"retention", retention, &p.Retention}, {"max-clock-skew", skew, &p.MaxClockSkew}, {"max-event-age", age, &p.MaxEventAge}} {
				if !fl.Changed(d.flag) {
					continue
				}
				v, err := parseAgo(strings.TrimSpace(d.val))
				if err != nil {
					return usageErrf("--%s %q: want a duration such as 90s, 5m, 720h or 30d", d.flag, d.val)
				}
				*d.dst = &v
			}
			if fl.Changed("unknown-types") {
				p.UnknownTypes = &unknown
			}
			if p.Empty() {
				return usageErrf("config set needs at least one of --retention, --max-clock-skew, --max-event-age, --unknown-types")
			}
			return c.withClient(func(cl *client.Client) error {
				cc, err := cl.PutClusterConfig(cmd.Context(), p)
				if err != nil {
					return err
				}
				return c.printConfig(cc)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&retention, "retention", "", "keep events this long after they were received (0s: for ever)")
	fl.StringVar(&skew, "max-clock-skew", "", "how far past its received_at a timestamp may be")
	fl.StringVar(&age, "max-event-age", "", "how far before its received_at a timestamp may be (0s: no limit)")
	fl.StringVar(&unknown, "unknown-types", "", "accept or reject events of a type with no schema")
	return cmd
}

func (c *cli) printConfig(cc client.ClusterConfig) error {
	return printOne(c.format(), c.stdout, cc, [][2]string{
		{"retention", cc.Retention.String()}, {"max_clock_skew", cc.MaxClockSkew.String()},
		{"max_event_age", cc.MaxEventAge.String()}, {"unknown_types", cc.UnknownTypes}})
}
