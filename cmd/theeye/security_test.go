package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/api"
)

// The attacker's view of a 3-node cluster (API.md, "Trust between the
// HTTP front and the cluster"): whoever can reach an HTTP port, with no key,
// a made-up key, a real key of too little scope, or node-to-node headers
// forged or replayed, changes nothing, on any node.

// clusterState is what an attack must leave as it was: the members, the
// apps, the keys (and whether each is revoked), the schemas and the log's
// last seq on every node.
type clusterState struct {
	Members []string
	Apps    []string
	Keys    []string
	Schemas int
	Applied []uint64
}

func readState(t *testing.T, nodes []*proc, adminKey string) clusterState {
	t.Helper()
	var st clusterState
	var cl struct {
		Nodes []struct {
			ID         string  `json:"id"`
			AppliedSeq *uint64 `json:"applied_seq"`
		} `json:"nodes"`
	}
	nodes[0].call("GET", "/v1/cluster", adminKey, "", nil, 200, &cl)
	for _, n := range cl.Nodes {
		st.Members = append(st.Members, n.ID)
		if n.AppliedSeq != nil {
			st.Applied = append(st.Applied, *n.AppliedSeq)
		}
	}
	var apps struct {
		Apps []struct{ ID string } `json:"apps"`
	}
	nodes[0].call("GET", "/v1/apps", adminKey, "", nil, 200, &apps)
	for _, a := range apps.Apps {
		st.Apps = append(st.Apps, a.ID)
	}
	var keys struct {
		Keys []struct {
			ID        string          `json:"id"`
			Revoked   bool            `json:"revoked"`
			RateLimit json.RawMessage `json:"rate_limit"`
		} `json:"keys"`
	}
	nodes[0].call("GET", "/v1/keys", adminKey, "", nil, 200, &keys)
	for _, k := range keys.Keys {
		st.Keys = append(st.Keys, fmt.Sprintf("%s revoked=%v rate_limit=%s", k.ID, k.Revoked, k.RateLimit))
	}
	var schemas struct {
		Schemas []json.RawMessage `json:"schemas"`
	}
	nodes[0].call("GET", "/v1/schemas", adminKey, "", nil, 200, &schemas)
	st.Schemas = len(schemas.Schemas)
	slices.Sort(st.Members)
	return st
}

// attack is one state-changing request an attacker tries.
type attack struct {
	method, path, body string
}

// stateChangingRoutes lists every route that changes state, membership
// first (TestAttackListCoversTheAPI holds it to the OpenAPI document).
// keyID names a real key, so that its DELETE and PATCH are not 404s;
// victimSession is the session whose erasure the attacker asks for.
func stateChangingRoutes(keyID string) []attack {
	return []attack{
		{"DELETE", "/v1/sessions/" + victimSession, ""},
		{"PATCH", "/v1/keys/" + keyID, `{"rate_limit":{"events_per_second":1,"burst":1}}`},
		{"POST", "/v1/cluster/nodes", `{"id":"evil","raft_addr":"127.0.0.1:1","http_addr":"http://127.0.0.1:1"}`},
		{"DELETE", "/v1/cluster/nodes/n2", ""},
		{"DELETE", "/v1/cluster/nodes/n1", ""},
		{"POST", "/v1/apps", `{"name":"evil"}`},
		{"POST", "/v1/keys", `{"name":"evil","scopes":["admin"]}`},
		{"DELETE", "/v1/keys/" + keyID, ""},
		{"POST", "/v1/schemas", `{"category":"page interaction","name":"pageview","schema":false}`},
		{"POST", "/v1/errors/revalidate", `{}`},
		{"PUT", "/v1/config", `{"max_clock_skew":"1000h"}`},
		{"POST", "/v1/events", exPageview},
	}
}

// victimSession holds an event before the attack that must still be
// there after it.
const victimSession = "victim"

// TestAttackListCoversTheAPI: every state-changing operation the server
// documents (POST, PUT, PATCH, DELETE in /openapi.json, which
// TestOpenAPICoversEveryRoute holds to the router) is in the attacker's
// list, so a new route cannot be left out of TestAttackerChangesNothing.
func TestAttackListCoversTheAPI(t *testing.T) {
	n := startNode(t, t.TempDir())
	st, b, _ := do(t, "GET", n.URL+"/openapi.json", "", "", nil)
	if st != 200 {
		t.Fatalf("GET /openapi.json: %d", st)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	mustJSON(t, b, &doc)
	param := regexp.MustCompile(`\{[^}]+\}`)
	attacks := stateChangingRoutes("key_1")
	for path, ops := range doc.Paths {
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(param.ReplaceAllString(path, "\x00")), "\x00", "[^/]+") + "$")
		for m := range ops {
			method := strings.ToUpper(m)
			if method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE" {
				continue
			}
			if !slices.ContainsFunc(attacks, func(a attack) bool { return a.method == method && re.MatchString(a.path) }) {
				t.Errorf("%s %s changes state but is not in stateChangingRoutes", method, path)
			}
		}
	}
}

// forgedProof is a node proof in the right shape that no cluster key made.
func forgedProof(node string) string {
	var nonce [16]byte
	var mac [32]byte
	rand.Read(nonce[:])
	rand.Read(mac[:])
	return fmt.Sprintf("v1 node=%s ts=%d nonce=%s mac=%s", node, time.Now().UnixNano(), hex.EncodeToString(nonce[:]), hex.EncodeToString(mac[:]))
}

// TestAttackerChangesNothing plays the outsider against every node and
// every state-changing route, then the insider with a key of too little
// scope, and checks that the cluster is as it was.
func TestAttackerChangesNothing(t *testing.T) {
	c := startCluster(t, 3, false)
	ingest := c.nodes[0].createApp("shop")
	var readKey struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	c.nodes[0].call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"analysts","scopes":["read"]}`), 201, &readKey)
	waitFor(t, 30*time.Second, "the read key on every node", func() error {
		for _, p := range c.nodes {
			if st, b, _ := do(t, "GET", p.URL+"/v1/events", readKey.Secret, "", nil); st != 200 {
				return fmt.Errorf("%s: %d %s", p.URL, st, b)
			}
		}
		return nil
	})
	victim := c.nodes[0].post(ingest, "application/json", []byte(`{"session_id":"`+victimSession+`","category":"c","name":"n","data":{"k":1},"timestamp":"2021-01-01T00:00:00Z"}`))
	victimThere := func(when string) {
		t.Helper()
		for _, p := range c.nodes {
			if pg := p.get(fmt.Sprintf("/v1/sessions/%s/events?min_seq=%d&wait=30s", victimSession, victim.Seq)); len(pg.Events) != 1 {
				t.Errorf("%s: the victim's session holds %d events %s, want 1", p.URL, len(pg.Events), when)
			}
		}
	}
	victimThere("before the attack") // and every node has applied it
	before := readState(t, c.nodes, testAdminKey)

	bogus := "eye_" + strings.Repeat("x", 43)
	type cred struct {
		name    string
		key     string
		headers func(a attack, target *proc) []string
		want    int
	}
	none := func(attack, *proc) []string { return nil }
	creds := []cred{
		{"no key", "", none, 401},
		{"made-up key", bogus, none, 401},
		{"made-up key + the cluster key in clear", bogus, func(attack, *proc) []string { return []string{api.HeaderClusterKey, testClusterKey} }, 401},
		{"the cluster key in clear, no key", "", func(attack, *proc) []string { return []string{api.HeaderClusterKey, testClusterKey} }, 401},
		{"made-up key + v1 forwarded marker", bogus, func(attack, *proc) []string { return []string{api.HeaderForwarded, "n1"} }, 401},
		{"made-up key + forged forwarding proof", bogus, func(attack, *proc) []string { return []string{api.HeaderForwarded, forgedProof("n2")} }, 401},
		{"forged node proof", "", func(attack, *proc) []string { return []string{api.HeaderNodeAuth, forgedProof("n2")} }, 401},
		{"made-up key + forged node proof", bogus, func(attack, *proc) []string { return []string{api.HeaderNodeAuth, forgedProof("n3")} }, 401},
		{"every node header forged at once", bogus, func(attack, *proc) []string {
			return []string{api.HeaderClusterKey, "guess", api.HeaderForwarded, forgedProof("n1"), api.HeaderNodeAuth, forgedProof("n2")}
		}, 401},
		{"a node proof of another cluster", "", func(a attack, _ *proc) []string {
			s, _ := api.NewNodeSigner("another-cluster-key", "n2")
			h, _ := s.Sign(a.method, a.path, []byte(a.body))
			return []string{api.HeaderNodeAuth, h}
		}, 401},
		{"a node proof for another request", "", func(a attack, _ *proc) []string {
			s, _ := api.NewNodeSigner(testClusterKey, "n2")
			h, _ := s.Sign("GET", "/v1/cluster/self", nil)
			return []string{api.HeaderNodeAuth, h}
		}, 401},
	}
	for _, target := range c.nodes {
		for _, cr := range creds {
			for _, a := range stateChangingRoutes(readKey.ID) {
				st, b, _ := do(t, a.method, target.URL+a.path, cr.key, "application/json", []byte(a.body), cr.headers(a, target)...)
				if st != cr.want {
					t.Errorf("%s %s on %s with %s: %d %s, want %d", a.method, a.path, target.URL, cr.name, st, b, cr.want)
				}
			}
		}
		// Real keys of too little scope: 403 on every admin route.
		for _, k := range []struct{ name, key string }{{"ingest key", ingest}, {"read key", readKey.Secret}} {
			for _, a := range stateChangingRoutes(readKey.ID) {
				if a.path == "/v1/events" && k.name == "ingest key" {
					continue // its one right
				}
				st, b, _ := do(t, a.method, target.URL+a.path, k.key, "application/json", []byte(a.body))
				if st != 403 {
					t.Errorf("%s %s on %s with the %s: %d %s, want 403", a.method, a.path, target.URL, k.name, st, b)
				}
			}
		}
	}

	// An insider's tools misused: a real node proof (made with the real
	// cluster key) opens no admin route, adds no other node, and cannot be
	// replayed.
	signer, err := api.NewNodeSigner(testClusterKey, "n2")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range c.nodes {
		a := attack{"POST", "/v1/apps", `{"name":"evil"}`}
		h, _ := signer.Sign(a.method, a.path, []byte(a.body))
		if st, b, _ := do(t, a.method, target.URL+a.path, "", "application/json", []byte(a.body), api.HeaderNodeAuth, h); st != 403 {
			t.Errorf("a real node proof on POST /v1/apps at %s: %d %s, want 403", target.URL, st, b)
		}
		join := attack{"POST", "/v1/cluster/nodes", `{"id":"evil","raft_addr":"127.0.0.1:1","http_addr":"http://127.0.0.1:1"}`}
		h, _ = signer.Sign(join.method, join.path, []byte(join.body))
		if st, b, _ := do(t, join.method, target.URL+join.path, "", "application/json", []byte(join.body), api.HeaderNodeAuth, h); st != 403 {
			t.Errorf("node n2's proof adding node evil at %s: %d %s, want 403", target.URL, st, b)
		}
		self := attack{"GET", "/v1/cluster/self", ""}
		h, _ = signer.Sign(self.method, self.path, nil)
		if st, b, _ := do(t, self.method, target.URL+self.path, "", "", nil, api.HeaderNodeAuth, h); st != 200 {
			t.Errorf("a real node proof on peer status at %s: %d %s, want 200", target.URL, st, b)
		}
		if st, b, _ := do(t, self.method, target.URL+self.path, "", "", nil, api.HeaderNodeAuth, h); st != 401 || !strings.Contains(string(b), "replayed") {
			t.Errorf("the same proof again at %s: %d %s, want 401 replayed", target.URL, st, b)
		}
	}

	after := readState(t, c.nodes, testAdminKey)
	victimThere("after the attack")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the cluster changed under attack:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestRevocationHoldsEverywhere revokes keys through followers, the
// bootstrap admin key included, checks them refused on every node, and
// restarts nodes with the old --admin-key: it does not come back.
func TestRevocationHoldsEverywhere(t *testing.T) {
	c := startCluster(t, 3, false)
	lead := c.leader()
	var followers []*proc
	for _, p := range c.nodes {
		if p != lead {
			followers = append(followers, p)
		}
	}
	refusedEverywhere := func(what, key string) {
		t.Helper()
		waitFor(t, 30*time.Second, what+" refused on every node", func() error {
			for _, p := range c.live() {
				if st, b, _ := do(t, "GET", p.URL+"/v1/events", key, "", nil); st != 401 {
					return fmt.Errorf("%s: %d %s", p.URL, st, b)
				}
			}
			return nil
		})
	}

	// A read key, revoked through a follower.
	var rk struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	followers[0].call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"analysts","scopes":["read"]}`), 201, &rk)
	var revoked map[string]any
	followers[1].call("DELETE", "/v1/keys/"+rk.ID, testAdminKey, "", nil, 200, &revoked)
	refusedEverywhere("the revoked read key", rk.Secret)

	// The bootstrap admin key is the last admin key: refused.
	st, b, _ := do(t, "DELETE", followers[0].URL+"/v1/keys/admin", testAdminKey, "", nil)
	if st != 409 || !strings.Contains(string(b), "last admin key") {
		t.Fatalf("revoking the last admin key: %d %s, want 409", st, b)
	}
	// A second admin key, made through a follower, then the bootstrap key
	// revoked through the other follower with it.
	var admin2 struct {
		Secret string `json:"secret"`
	}
	followers[0].call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"ops","scopes":["admin"]}`), 201, &admin2)
	waitFor(t, 30*time.Second, "the new admin key on every node", func() error {
		for _, p := range c.nodes {
			if st, b, _ := do(t, "GET", p.URL+"/v1/keys", admin2.Secret, "", nil); st != 200 {
				return fmt.Errorf("%s: %d %s", p.URL, st, b)
			}
		}
		return nil
	})
	followers[1].call("DELETE", "/v1/keys/admin", admin2.Secret, "", nil, 200, &revoked)
	refusedEverywhere("the bootstrap admin key", testAdminKey)
	for _, p := range c.nodes {
		if st, b, _ := do(t, "POST", p.URL+"/v1/apps", testAdminKey, "application/json", []byte(`{"name":"after"}`)); st != 401 {
			t.Fatalf("the revoked admin key creating an app at %s: %d %s", p.URL, st, b)
		}
	}

	// Every node restarted with the old --admin-key (the harness passes
	// it on every start), the bootstrap node first.
	for _, p := range c.nodes {
		p.stop()
		p.start()
	}
	waitFor(t, 60*time.Second, "a leader after the restarts", func() error {
		for _, p := range c.nodes {
			var v clusterView
			if st, b, _ := do(t, "GET", p.URL+"/v1/cluster", admin2.Secret, "", nil); st != 200 {
				return fmt.Errorf("%s: %d %s", p.URL, st, b)
			} else if err := json.Unmarshal(b, &v); err != nil || v.Leader == "" {
				return fmt.Errorf("%s: no leader: %w", p.URL, err)
			}
		}
		return nil
	})
	refusedEverywhere("the bootstrap admin key after restarts with --admin-key", testAdminKey)
	refusedEverywhere("the revoked read key after restarts", rk.Secret)
	var keys struct {
		Keys []struct {
			ID      string `json:"id"`
			Revoked bool   `json:"revoked"`
		} `json:"keys"`
	}
	c.nodes[0].call("GET", "/v1/keys", admin2.Secret, "", nil, http.StatusOK, &keys)
	for _, k := range keys.Keys {
		if k.ID == "admin" && !k.Revoked {
			t.Fatal("the admin key is live again after the restarts")
		}
	}
}

// TestConfigIsClusterState: validation policy is replicated. A change made
// through a follower reaches every node, judges only the events logged
// after it, the same way on every node, and a node restarted with other
// flags does not change it.
func TestConfigIsClusterState(t *testing.T) {
	c := startCluster(t, 3, false, "--max-clock-skew", "5m")
	key := c.nodes[0].createApp("shop")
	lead := c.leader()
	var follower *proc
	for _, p := range c.nodes {
		if p != lead {
			follower = p
			break
		}
	}
	future := time.Now().UTC().Add(30 * time.Minute).Format(time.RFC3339)
	ev := fmt.Sprintf(`{"session_id":"cfg","category":"page interaction","name":"pageview","data":{"path":"/"},"timestamp":%q}`, future)
	before := follower.post(key, "application/json", []byte(ev))

	var cfg map[string]string
	follower.call("GET", "/v1/config", testAdminKey, "", nil, 200, &cfg)
	if cfg["max_clock_skew"] != "5m0s" || cfg["max_event_age"] != "0s" || cfg["unknown_types"] != "accept" {
		t.Fatalf("seeded config %v", cfg)
	}
	for _, bad := range []struct{ body, field string }{
		{`{"max_clock_skew":"soon"}`, "max_clock_skew"},
		{`{"max_event_age":"-1h"}`, "max_event_age"},
		{`{"unknown_types":"maybe"}`, "unknown_types"},
		{`{"max_clock_skew":60}`, "max_clock_skew"},
		{`{"colour":"red"}`, "colour"},
	} {
		st, b, _ := do(t, "PUT", follower.URL+"/v1/config", testAdminKey, "application/json", []byte(bad.body))
		var e struct {
			Error struct {
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		json.Unmarshal(b, &e)
		if st != 400 || e.Error.Details["field"] != bad.field {
			t.Errorf("PUT %s: %d %s, want 400 naming %s", bad.body, st, b, bad.field)
		}
	}
	follower.call("PUT", "/v1/config", testAdminKey, "application/json", []byte(`{"max_clock_skew":"1h"}`), 200, &cfg)
	if cfg["max_clock_skew"] != "1h0m0s" || cfg["unknown_types"] != "accept" {
		t.Fatalf("after PUT: %v", cfg)
	}
	after := follower.post(key, "application/json", []byte(ev))
	for _, p := range c.nodes {
		var got map[string]string
		waitFor(t, 30*time.Second, "the config on "+p.URL, func() error {
			p.call("GET", "/v1/config", testAdminKey, "", nil, 200, &got)
			if got["max_clock_skew"] != "1h0m0s" {
				return fmt.Errorf("%v", got)
			}
			return nil
		})
		pg := p.get(fmt.Sprintf("/v1/sessions/cfg/events?min_seq=%d&wait=30s", after.Seq))
		if len(pg.Events) != 1 || pg.Events[0].Seq != after.Seq {
			t.Errorf("%s: session events %+v, want only seq %d (logged after the change)", p.URL, pg.Events, after.Seq)
		}
		var errs struct {
			Errors []struct {
				Seq     uint64 `json:"seq"`
				Reasons []struct {
					Code string `json:"code"`
				} `json:"reasons"`
			} `json:"errors"`
		}
		p.call("GET", fmt.Sprintf("/v1/errors?min_seq=%d", after.Seq), testAdminKey, "", nil, 200, &errs)
		if len(errs.Errors) != 1 || errs.Errors[0].Seq != before.Seq || errs.Errors[0].Reasons[0].Code != "timestamp_in_future" {
			t.Errorf("%s: errors %+v, want seq %d timestamp_in_future (logged before the change)", p.URL, errs.Errors, before.Seq)
		}
	}
	// Flags seed a new cluster only: a restart with others changes nothing.
	n1 := c.nodes[0]
	n1.stop()
	n1.Extra = append(n1.Extra, "--max-clock-skew", "1s", "--unknown-types", "reject")
	n1.start()
	n1.call("GET", "/v1/config", testAdminKey, "", nil, 200, &cfg)
	if cfg["max_clock_skew"] != "1h0m0s" || cfg["unknown_types"] != "accept" {
		t.Fatalf("after a restart with other flags: %v", cfg)
	}
}

// TestStalledExportHoldsNothing: an NDJSON export whose reader stops
// reading holds no lock and no iterator. Ingest, indexing and other queries
// go on around it, and SIGTERM still stops the node cleanly, within its
// shutdown deadline.
func TestStalledExportHoldsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	p := startNode(t, t.TempDir())
	key := p.createApp("shop")
	var batch strings.Builder
	var last ack
	for i := range 60 { // 60,000 events, ~25 MB rendered: far more than the socket buffers hold
		batch.Reset()
		batch.WriteByte('[')
		for j := range 1000 {
			if j > 0 {
				batch.WriteByte(',')
			}
			fmt.Fprintf(&batch, `{"session_id":"s%d","category":"page interaction","name":"pageview","data":{"path":"/p/%d","pad":"%s"},"timestamp":"2021-01-01T09:00:00Z"}`,
				i, j, strings.Repeat("x", 200))
		}
		batch.WriteByte(']')
		last = p.post(key, "application/json", []byte(batch.String()))
	}
	p.get(fmt.Sprintf("/v1/events?limit=1&min_seq=%d&wait=60s", last.Seq))

	// The export: headers read, then nothing.
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events?category=page+interaction HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: application/x-ndjson\r\n\r\n", testAdminKey)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %v %v", resp, err)
	}

	// Around the stalled reader: a new event is indexed and queryable, and
	// a page of the same category is served.
	a := p.post(key, "application/json", []byte(exPageview))
	if pg := p.get(fmt.Sprintf("/v1/sessions/%s/events?min_seq=%d&wait=30s", exSession, a.Seq)); len(pg.Events) != 1 {
		t.Fatalf("the new event while an export stalls: %+v", pg.Events)
	}
	if pg := p.get("/v1/events?category=page+interaction&limit=10"); len(pg.Events) != 10 {
		t.Fatalf("a page while an export stalls: %d events", len(pg.Events))
	}

	start := time.Now()
	if err := p.Node.Stop(25 * time.Second); err != nil {
		t.Fatalf("SIGTERM with a stalled export: %v", err)
	}
	t.Logf("stopped %s after SIGTERM with an export stalled", time.Since(start).Round(time.Millisecond))
}

// TestSecretsStayInside: the keys given on the command line appear in no
// answer of the node, on the API's port or the profiler's, nor in its log.
func TestSecretsStayInside(t *testing.T) {
	const adminKey, clusterKey = "eye_admin_secret_do_not_show", "cluster_secret_do_not_show"
	p := newProc(t, t.TempDir(), "--cluster-key", clusterKey, "--pprof", "127.0.0.1:0")
	p.AdminKey = adminKey
	t.Cleanup(p.kill9)
	p.start()
	m := regexp.MustCompile(`msg="pprof listening" addr=(\S+)`).FindStringSubmatch(p.Out.String())
	if m == nil {
		t.Fatalf("no pprof line:\n%s", p.Out.String())
	}
	st, cmdline, _ := do(t, "GET", "http://"+m[1]+"/debug/pprof/cmdline", "", "", nil)
	if st != 200 || !strings.Contains(string(cmdline), "--admin-key\x00[redacted]") || !strings.Contains(string(cmdline), "--cluster-key\x00[redacted]") {
		t.Fatalf("cmdline: %d %q", st, cmdline)
	}
	var seen []string
	for _, path := range []string{"/status", "/metrics", "/openapi.json", "/", "/healthz", "/readyz", "/v1/cluster", "/v1/keys", "/v1/config"} {
		_, b, _ := do(t, "GET", p.URL+path, adminKey, "", nil)
		seen = append(seen, string(b))
	}
	seen = append(seen, string(cmdline), p.Out.String())
	for i, s := range seen {
		if strings.Contains(s, adminKey) || strings.Contains(s, clusterKey) {
			t.Errorf("answer %d holds a key:\n%.2000s", i, s)
		}
	}
}

// TestKeyWithoutAppIsNotAnApp: a key bound to no app, even one named like
// an app, stamps its own "key:<id>" on its events; it neither writes as
// the app nor uses up the app's idempotency ids.
func TestKeyWithoutAppIsNotAnApp(t *testing.T) {
	p := startNode(t, t.TempDir())
	shop := p.createApp("shop")
	var k struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	p.call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"shop","scopes":["ingest"]}`), 201, &k)
	withID := func(id, path string) []byte {
		return []byte(fmt.Sprintf(`{"id":%q,"session_id":"s-app","category":"page interaction","name":"pageview","data":{"path":%q},"timestamp":"2021-01-01T09:00:00Z"}`, id, path))
	}
	p.post(shop, "application/json", withID("e1", "/from-the-app"))
	a := p.post(k.Secret, "application/json", withID("e1", "/from-the-key"))
	pg := p.get(fmt.Sprintf("/v1/sessions/s-app/events?min_seq=%d", a.Seq))
	if len(pg.Events) != 2 {
		t.Fatalf("events %+v, want both: the key's id e1 is not the app's", pg.Events)
	}
	apps := map[string]string{}
	for _, e := range pg.Events {
		apps[string(e.Data)] = e.App
	}
	if apps[`{"path":"/from-the-app"}`] != "shop" || apps[`{"path":"/from-the-key"}`] != "key:"+k.ID {
		t.Fatalf("apps stamped %v, want shop and key:%s", apps, k.ID)
	}
	if got := p.get("/v1/events?app=shop"); len(got.Events) != 1 {
		t.Fatalf("app=shop: %d events, want the app's one", len(got.Events))
	}
	var errs struct {
		Errors []json.RawMessage `json:"errors"`
	}
	p.call("GET", "/v1/errors", testAdminKey, "", nil, 200, &errs)
	if len(errs.Errors) != 0 {
		t.Fatalf("errors %s: the ids collided", errs.Errors)
	}
}
