package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
)

// TestAdmin: apps and keys through their whole life, and the cluster view.
func TestAdmin(t *testing.T) {
	ctx := testCtx(t)
	admin := adminClient(t, shared)
	name := appName(t)

	app, key, err := admin.CreateApp(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if app.ID != name || app.Name != name || app.CreatedAt.IsZero() {
		t.Errorf("app %+v", app)
	}
	if !strings.HasPrefix(key.Secret, "eye_") || key.ID == "" || !slices.Equal(key.Scopes, []client.Scope{client.ScopeIngest}) || key.App != name {
		t.Errorf("app key %+v", key)
	}
	_, _, err = admin.CreateApp(ctx, name)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != "conflict" {
		t.Errorf("duplicate app: %v, want 409 conflict", err)
	}
	apps, err := admin.ListApps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(apps, func(a client.App) bool { return a.ID == name }) {
		t.Errorf("ListApps has no %q: %+v", name, apps)
	}

	rk, err := admin.CreateKey(ctx, name+"-readers", []client.Scope{client.ScopeRead}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rk.Secret == "" || rk.ID == "" || rk.Name != name+"-readers" {
		t.Errorf("read key %+v", rk)
	}
	keys, err := admin.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(keys, func(k client.Key) bool { return k.ID == rk.ID })
	if i < 0 || keys[i].Revoked || !slices.Equal(keys[i].Scopes, []client.Scope{client.ScopeRead}) {
		t.Fatalf("ListKeys: %+v", keys)
	}

	reader := newClient(t, client.Config{Key: rk.Secret})
	if _, err := reader.EventsPage(ctx, client.Query{Limit: 1}, ""); err != nil {
		t.Fatalf("query with the new read key: %v", err)
	}
	if err := admin.RevokeKey(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the revoked key to be refused", func() error {
		_, err := reader.EventsPage(ctx, client.Query{Limit: 1}, "")
		if err == nil {
			return errors.New("the key still works")
		}
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			return fmt.Errorf("query: %w", err)
		}
		return nil
	})

	cl, err := admin.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Leader == "" || len(cl.Nodes) != 1 || cl.Nodes[0].ID != cl.Leader || cl.Nodes[0].State != "leader" || cl.Nodes[0].IndexedSeq == nil {
		t.Errorf("cluster %+v", cl)
	}
}

// TestClusterMembership: ClusterStatus, RemoveNode and AddNode against a
// real two-node cluster (the second node joined with --join and the
// cluster's key).
func TestClusterMembership(t *testing.T) {
	ctx := testCtx(t)
	a := startNode(t, "--cluster-key", "client-test-cluster-key")
	b := startNode(t, "--node-id", "n2", "--join", a.URL, "--cluster-key", "client-test-cluster-key")
	admin := adminClient(t, a)
	members := func(want int) {
		t.Helper()
		err := poll(30*time.Second, func() error {
			cl, err := admin.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			if len(cl.Nodes) != want {
				return fmt.Errorf("%d members, want %d", len(cl.Nodes), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	members(2)
	if err := admin.RemoveNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	members(1)
	spec := client.NodeSpec{ID: "n2", RaftAddr: fmt.Sprintf("127.0.0.1:%d", b.RaftPort), HTTPAddr: b.URL}
	if err := admin.AddNode(ctx, spec); err != nil {
		t.Fatal(err)
	}
	members(2)
	if err := admin.RemoveNode(ctx, ""); err == nil {
		t.Fatal("RemoveNode with no id succeeded")
	}
}

// TestSchemas: PutSchema and ListSchemas, once the server has the routes.
func TestSchemas(t *testing.T) {
	ctx := testCtx(t)
	admin := adminClient(t, shared)
	category := "schema " + appName(t)
	schema := json.RawMessage(`{"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}}`)
	s, err := admin.PutSchema(ctx, category, "pageview", schema)
	var e *client.Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		t.Skipf("the server has no POST /v1/schemas yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.Category != category || s.Name != "pageview" || s.Version < 1 {
		t.Errorf("put: %+v", s)
	}
	list, err := admin.ListSchemas(ctx, category, "pageview")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 || list[len(list)-1].Version != s.Version {
		t.Errorf("list: %+v", list)
	}
	_, err = admin.PutSchema(ctx, category, "pageview", json.RawMessage(`{"type": 12}`))
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("a schema that does not compile: %v, want 400", err)
	}
}
