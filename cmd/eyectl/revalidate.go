package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

// revalidatePoll is how often a followed revalidation is asked for its
// progress.
const revalidatePoll = 500 * time.Millisecond

func (c *cli) revalidateCommand() *cobra.Command {
	var from, to, reason, category, name string
	var noFollow bool
	cmd := &cobra.Command{
		Use:   "revalidate [--from T] [--to T] [--reason R] [--category C [--name N]]",
		Short: "Judge stored failures again against today's schemas and config, and follow it (admin key)",
		Long: `Ask the cluster to judge the stored failures again (those received in
[--from, --to), of a reason, of an event type) against the schemas and the
cluster config in force now: those that pass become events, once, on every
node. Every node runs the request at the same position of its log, chunk by
chunk; eyectl follows the node it asks until it is done, with a progress
line, unless --no-follow.`,
		Example: `  eyectl revalidate --reason schema_violation --from -7d
  eyectl revalidate --category "form interaction" --name submit --no-follow`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name != "" && category == "" {
				return usageErrf("--name needs --category: an event type is category + name")
			}
			f, t, err := timeRange(from, to)
			if err != nil {
				return err
			}
			return c.withClient(func(cl *client.Client) error {
				r, err := cl.Revalidate(cmd.Context(), client.RevalidateRequest{From: f, To: t, Reason: reason, Category: category, Name: name})
				if err != nil {
					return err
				}
				if !noFollow && !r.Done() {
					if r, err = c.followRevalidation(cmd.Context(), cl, r); err != nil {
						return err
					}
				}
				return printOne(c.format(), c.stdout, r, [][2]string{
					{"id", fmt.Sprint(r.ID)}, {"at_seq", fmt.Sprint(r.AtSeq)}, {"status", r.Status},
					{"checked", fmt.Sprint(r.Checked)}, {"accepted", fmt.Sprint(r.Accepted)}, {"failing", fmt.Sprint(r.Failing)}})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "only failures received at or after this time")
	fl.StringVar(&to, "to", "", "only failures received before this time")
	fl.StringVar(&reason, "reason", "", "only failures with this reason code")
	fl.StringVar(&category, "category", "", "only failures of this category")
	fl.StringVar(&name, "name", "", "only failures of this event name (with --category)")
	fl.BoolVar(&noFollow, "no-follow", false, "print the request and return, without waiting for it to finish")
	return cmd
}

// followRevalidation asks for r's progress until it is done on the node,
// drawing a progress line on a terminal.
func (c *cli) followRevalidation(ctx context.Context, cl *client.Client, r client.Revalidation) (client.Revalidation, error) {
	var bar *progressbar.ProgressBar
	if isTerminal(c.stderr) {
		bar = newBar(c.stderr, -1, fmt.Sprintf("revalidation %d: failures judged", r.ID),
			progressbar.OptionShowCount(), progressbar.OptionSpinnerType(14))
		defer bar.Finish()
	}
	t := time.NewTicker(revalidatePoll)
	defer t.Stop()
	for !r.Done() {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-t.C:
		}
		next, err := cl.RevalidationStatus(ctx, r.ID)
		if err != nil {
			return r, err
		}
		next.AtSeq = r.AtSeq
		r = next
		if bar != nil {
			bar.Set64(int64(r.Checked))
		}
	}
	return r, nil
}
