package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

func (c *cli) statusCommand() *cobra.Command {
	var app string
	var seq uint64
	cmd := &cobra.Command{
		Use:   "status ID [--app A] [--seq N]",
		Short: "Where an event sent with its own id stands: pending, indexed, failed or duplicate",
		Long: `Ask the node where the event an app sent with the id ID stands:

  pending    acknowledged, not indexed yet on this node
  indexed    valid, and every query of this node returns it
  failed     stored, but it failed validation (the reasons say why)
  duplicate  (with --seq) that copy is a byte-identical retry, not indexed again

Without --seq the answer is about the first event the app sent with that id
(a byte-identical retry is the same event; a retry with other bytes fails on
its own, with duplicate_id_conflict: ask for it with --seq). With an ingest
key --app may be left out (its own app); a read key must name it.`,
		Example: `  eyectl status 01J9Z4Q6X2N7M3 --key "$INGEST_KEY"
  eyectl status order-1042 --app shop-web --seq 5310 -o json`,
		Args: exactArgs(1, "the event's id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(func(cl *client.Client) error {
				st, err := cl.StatusAt(cmd.Context(), app, args[0], seq)
				if err != nil {
					return err
				}
				return printOne(c.format(), c.stdout, st, statusRows(st))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "the app that sent it (required with a read key)")
	f.Uint64Var(&seq, "seq", 0, "the seq of one copy of the event (0: the first one)")
	return cmd
}

func statusRows(st client.EventStatus) [][2]string {
	rows := [][2]string{{"ID", st.ID}, {"APP", st.App}, {"SEQ", fmt.Sprint(st.Seq)}, {"STATUS", st.Status}}
	if st.DuplicateOf > 0 {
		rows = append(rows, [2]string{"DUPLICATE_OF", fmt.Sprint(st.DuplicateOf)})
	}
	if len(st.Reasons) > 0 {
		reasons := make([]string, len(st.Reasons))
		for i, r := range st.Reasons {
			reasons[i] = r.Code + "@" + r.Field + ": " + r.Message
		}
		rows = append(rows, [2]string{"REASONS", strings.Join(reasons, "; ")})
	}
	return rows
}
