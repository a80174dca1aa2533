package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/theeye/theeye/client"
)

func (c *cli) appsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "Create and list applications (admin key)",
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Register an application and print its ingest key (shown only once)",
		Args:  exactArgs(1, "the app NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(func(cl *client.Client) error {
				app, key, err := cl.CreateApp(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				out := struct {
					client.App
					Key client.NewKey `json:"key"`
				}{app, key}
				return printOne(c.format(), c.stdout, out, [][2]string{
					{"app", app.ID},
					{"created", fmtTime(app.CreatedAt)},
					{"key id", key.ID},
					{"scopes", scopes(key.Scopes)},
					{"secret", key.Secret + "   (shown only once: keep it)"},
				})
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List applications",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withClient(func(cl *client.Client) error {
				apps, err := cl.ListApps(cmd.Context())
				if err != nil {
					return err
				}
				_, err = lister[client.App]{format: c.format(), w: c.stdout, header: []string{"ID", "NAME", "CREATED"},
					row: func(a client.App) []string { return []string{a.ID, a.Name, fmtTime(a.CreatedAt)} }}.print(seqOf(apps))
				return err
			})
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

func scopes(s []client.Scope) string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return strings.Join(out, ",")
}

func (c *cli) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (admin key)",
	}
	var name, app string
	var scopeFlags []string
	create := &cobra.Command{
		Use:     "create --name N --scope S... [--app A]",
		Short:   "Create a key and print its secret (shown only once)",
		Example: `  eyectl keys create --name analysts --scope read`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(scopeFlags) == 0 {
				return usageErrf("keys create needs --name and at least one --scope (ingest, read or admin)")
			}
			var sc []client.Scope
			for _, s := range scopeFlags {
				switch client.Scope(s) {
				case client.ScopeIngest, client.ScopeRead, client.ScopeAdmin:
					sc = append(sc, client.Scope(s))
				default:
					return usageErrf("--scope %q: want ingest, read or admin", s)
				}
			}
			return c.withClient(func(cl *client.Client) error {
				k, err := cl.CreateKey(cmd.Context(), name, sc, app)
				if err != nil {
					return err
				}
				return printOne(c.format(), c.stdout, k, [][2]string{
					{"key id", k.ID},
					{"name", k.Name},
					{"app", k.App},
					{"scopes", scopes(k.Scopes)},
					{"secret", k.Secret + "   (shown only once: keep it)"},
				})
			})
		},
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "a name for the key")
	f.StringSliceVar(&scopeFlags, "scope", nil, "ingest, read or admin; repeat or comma-separate")
	f.StringVar(&app, "app", "", "the app events sent with this key belong to")
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never their secrets)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withClient(func(cl *client.Client) error {
				keys, err := cl.ListKeys(cmd.Context())
				if err != nil {
					return err
				}
				_, err = lister[client.Key]{format: c.format(), w: c.stdout, header: []string{"ID", "NAME", "APP", "SCOPES", "CREATED", "REVOKED"},
					row: func(k client.Key) []string {
						return []string{k.ID, k.Name, k.App, scopes(k.Scopes), fmtTime(k.CreatedAt), fmt.Sprint(k.Revoked)}
					}}.print(seqOf(keys))
				return err
			})
		},
	}
	revoke := c.idCommand("revoke ID", "Revoke a key (every node refuses it once committed)",
		"the key ID (see eyectl keys list)", "revoked", (*client.Client).RevokeKey)
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (c *cli) schemasCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "Register and list the JSON Schemas of event types (admin key)",
	}
	var category, name string
	put := &cobra.Command{
		Use:     "put --category C --name N FILE|-",
		Short:   "Register a new version of the JSON Schema (2020-12) of category + name",
		Example: `  eyectl schemas put --category "form interaction" --name submit submit.schema.json`,
		Args:    exactArgs(1, "the schema FILE (- for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if category == "" || name == "" {
				return usageErrf("schemas put needs --category and --name")
			}
			var r io.Reader = c.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageErr(fmt.Errorf("open schema: %w", err))
				}
				defer f.Close()
				r = f
			}
			b, err := io.ReadAll(io.LimitReader(r, 1<<20))
			if err != nil {
				return usageErr(fmt.Errorf("read schema: %w", err))
			}
			if !json.Valid(b) {
				return usageErrf("%s is not valid JSON", args[0])
			}
			return c.withClient(func(cl *client.Client) error {
				s, err := cl.PutSchema(cmd.Context(), category, name, b)
				if err != nil {
					return err
				}
				return printOne(c.format(), c.stdout, s, [][2]string{
					{"category", s.Category}, {"name", s.Name}, {"version", fmt.Sprint(s.Version)}})
			})
		},
	}
	put.Flags().StringVar(&category, "category", "", "the event category")
	put.Flags().StringVar(&name, "name", "", "the event name")
	var lcat, lname string
	list := &cobra.Command{
		Use:   "list [--category C --name N]",
		Short: "List the latest version of every schema, or every version of one",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withClient(func(cl *client.Client) error {
				ss, err := cl.ListSchemas(cmd.Context(), lcat, lname)
				if err != nil {
					return err
				}
				_, err = lister[client.Schema]{format: c.format(), w: c.stdout, header: []string{"CATEGORY", "NAME", "VERSION", "CREATED", "SCHEMA"},
					row: func(s client.Schema) []string {
						return []string{s.Category, s.Name, fmt.Sprint(s.Version), fmtTime(s.CreatedAt), clip(compactJSON(s.Schema), 60)}
					}}.print(seqOf(ss))
				return err
			})
		},
	}
	list.Flags().StringVar(&lcat, "category", "", "the event category")
	list.Flags().StringVar(&lname, "name", "", "the event name")
	cmd.AddCommand(put, list)
	return cmd
}

func (c *cli) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show and change the cluster's membership",
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the answering node's view of the cluster (read key)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withClient(func(cl *client.Client) error {
				st, err := cl.ClusterStatus(cmd.Context())
				if err != nil {
					return err
				}
				if c.format() != "table" {
					return printOne(c.format(), c.stdout, st, nil)
				}
				leader := st.Leader
				if leader == "" {
					leader = "none known"
				}
				fmt.Fprintf(c.stdout, "leader: %s\n", leader)
				_, err = lister[client.Node]{format: "table", w: c.stdout, header: []string{"ID", "RAFT", "HTTP", "SUFFRAGE", "STATE", "APPLIED", "INDEXED"},
					row: func(n client.Node) []string {
						return []string{n.ID, n.RaftAddr, n.HTTPAddr, n.Suffrage, n.State, optSeq(n.AppliedSeq), optSeq(n.IndexedSeq)}
					}}.print(seqOf(st.Nodes))
				return err
			})
		},
	}
	var spec client.NodeSpec
	join := &cobra.Command{
		Use:     "join --id ID --raft ADDR --http URL",
		Short:   "Add a voter to the cluster (admin key; any node forwards to the leader)",
		Example: `  eyectl cluster join --id n2 --raft 10.0.0.2:8081 --http http://10.0.0.2:8080`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if spec.ID == "" || spec.RaftAddr == "" || spec.HTTPAddr == "" {
				return usageErrf("cluster join needs --id, --raft and --http")
			}
			return c.withClient(func(cl *client.Client) error {
				if err := cl.AddNode(cmd.Context(), spec); err != nil {
					return err
				}
				return printOne(c.format(), c.stdout, spec, [][2]string{{"added", spec.ID}, {"raft", spec.RaftAddr}, {"http", spec.HTTPAddr}})
			})
		},
	}
	join.Flags().StringVar(&spec.ID, "id", "", "the new node's --node-id")
	join.Flags().StringVar(&spec.RaftAddr, "raft", "", "its Raft address (host:port)")
	join.Flags().StringVar(&spec.HTTPAddr, "http", "", "its HTTP base URL")
	remove := c.idCommand("remove ID", "Remove a node from the cluster (admin key)", "the node ID", "removed", (*client.Client).RemoveNode)
	cmd.AddCommand(status, join, remove)
	return cmd
}

// idCommand is a command that does one thing to one ID and prints
// {"id": ID, done: true} (or a table row done ID).
func (c *cli) idCommand(use, short, argWhat, done string, call func(*client.Client, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, argWhat),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(func(cl *client.Client) error {
				if err := call(cl, cmd.Context(), args[0]); err != nil {
					return err
				}
				return printOne(c.format(), c.stdout, map[string]any{"id": args[0], done: true}, [][2]string{{done, args[0]}})
			})
		},
	}
}

func optSeq(p *uint64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
