package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// TestComposeCluster: the deploy/ image and compose file bring a 3-node
// cluster to ready; a write through one node is readable on all three; a
// node cut off with `docker network disconnect` acknowledges nothing, and
// after reconnecting it holds everything the majority acknowledged.
func TestComposeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker daemon")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The image: the static binary in an otherwise empty context.
	bctx := t.TempDir()
	benv, bargs := theeyetest.ReleaseBuild()
	run(benv, "go", append(bargs, "-o", filepath.Join(bctx, "theeye"), ".")...)
	project := fmt.Sprintf("theeyetest%d", os.Getpid())
	image := project + ":test"
	run(nil, "docker", "build", "-q", "-t", image, "-f", "../../deploy/Dockerfile", bctx)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })

	ports := []int{freePort(t), freePort(t), freePort(t)}
	env := []string{"THEEYE_IMAGE=" + image, "THEEYE_ADMIN_KEY=" + testAdminKey, "THEEYE_CLUSTER_KEY=" + testClusterKey,
		fmt.Sprintf("THEEYE_N1_PORT=%d", ports[0]), fmt.Sprintf("THEEYE_N2_PORT=%d", ports[1]), fmt.Sprintf("THEEYE_N3_PORT=%d", ports[2])}
	compose := func(args ...string) string {
		return run(env, "docker-compose", append([]string{"-p", project, "-f", "../../deploy/docker-compose.yml"}, args...)...)
	}
	t.Cleanup(func() {
		cmd := exec.Command("docker-compose", "-p", project, "-f", "../../deploy/docker-compose.yml", "down", "-v", "-t", "5")
		cmd.Env = append(os.Environ(), env...)
		cmd.Run()
	})
	compose("up", "-d")

	c := &testCluster{t: t}
	for _, port := range ports {
		p := &proc{t: t, Node: &theeyetest.Node{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Done: make(chan struct{})}}
		c.nodes = append(c.nodes, p)
	}
	waitFor(t, 2*time.Minute, "the compose cluster", func() error {
		for _, p := range c.nodes {
			if st, b, _ := do(t, "GET", p.URL+"/readyz", "", "", nil); st != 200 {
				return fmt.Errorf("%s: %d %s", p.URL, st, b)
			}
		}
		return nil
	})
	c.waitMembers(3)
	key := c.nodes[1].createApp("web")
	a := c.nodes[2].post(key, "application/json", []byte("["+exPageview+","+exCTA+"]"))
	for _, p := range c.nodes {
		if pg := p.get(fmt.Sprintf("/v1/sessions/%s/events?min_seq=%d", exSession, a.Seq)); len(pg.Events) != 2 {
			t.Fatalf("%s: %d events, want 2", p.URL, len(pg.Events))
		}
	}

	// Cut n3 off its network: it must not acknowledge.
	n3 := strings.TrimSpace(compose("ps", "-q", "n3"))
	network := project + "_theeye"
	run(nil, "docker", "network", "disconnect", network, n3)
	// (Its published port may stop answering too: that is no ack either.)
	client := &http.Client{Timeout: 10 * time.Second}
	if a, err := postOnce(client, c.nodes[2].URL, key, []byte(exSubmit)); err == nil {
		t.Fatalf("a node cut off from the others acknowledged seq %d", a.Seq)
	}
	var acked uint64
	waitFor(t, time.Minute, "the majority to acknowledge", func() error {
		st, b, _ := do(t, "POST", c.nodes[0].URL+"/v1/events", key, "application/json", []byte(exSubmit))
		if st != 202 {
			return fmt.Errorf("%d %s", st, b)
		}
		var ak ack
		mustJSON(t, b, &ak)
		acked = ak.Seq
		return nil
	})
	run(nil, "docker", "network", "connect", network, n3)
	waitFor(t, time.Minute, "n3 to answer again", func() error {
		resp, err := client.Get(c.nodes[2].URL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	pg := c.nodes[2].get(fmt.Sprintf("/v1/sessions/%s/events?min_seq=%d&wait=60s", exSession, acked))
	found := false
	for _, e := range pg.Events {
		found = found || e.Seq == acked
	}
	if !found {
		t.Fatalf("n3 lacks seq %d after reconnecting: %+v", acked, pg.Events)
	}
}

// TestComposeNeedsKeys: the compose file refuses to start a cluster whose
// admin or cluster key is not set, rather than fall back on well-known ones.
func TestComposeNeedsKeys(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	for _, missing := range []string{"THEEYE_ADMIN_KEY", "THEEYE_CLUSTER_KEY"} {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "THEEYE_") {
				env = append(env, kv)
			}
		}
		for _, k := range []string{"THEEYE_ADMIN_KEY", "THEEYE_CLUSTER_KEY"} {
			if k != missing {
				env = append(env, k+"=set")
			}
		}
		cmd := exec.Command("docker-compose", "-f", "../../deploy/docker-compose.yml", "config")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "set "+missing) {
			t.Errorf("docker-compose config without %s: %v\n%s", missing, err, out)
		}
	}
}
