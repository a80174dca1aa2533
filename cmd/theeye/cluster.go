package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/theeye/theeye/api"
)

// tlsConfigs loads --tls-cert/--tls-key/--tls-ca: one config for both
// ends of Raft connections and the HTTP server (peers must present a
// certificate the CA signed), one for the HTTP client nodes use to forward
// and to ask each other. All nil without --tls-cert.
func tlsConfigs(cfg Config) (server *tls.Config, client *tls.Config, err error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" && cfg.TLSCA == "" {
		return nil, nil, nil
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" || cfg.TLSCA == "" {
		return nil, nil, errors.New("--tls-cert, --tls-key and --tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.TLSCA)
	if err != nil {
		return nil, nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", cfg.TLSCA)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}

// normalizeURL adds the scheme to a bare host:port.
func normalizeURL(addr string, tlsOn bool) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	if tlsOn {
		return "https://" + addr
	}
	return "http://" + addr
}

// joinCluster asks a member (any; it forwards to the leader) to add this
// node as a voter, retrying with backoff until it succeeds, ctx ends, or
// the cluster refuses the key (403: retrying will not help).
func (m *Main) joinCluster(ctx context.Context, client *http.Client, clusterKey, joinURL, raftAddr, httpAddr string) error {
	body, _ := json.Marshal(map[string]string{"id": m.Config.NodeID, "raft_addr": raftAddr, "http_addr": httpAddr})
	signer, err := api.NewNodeSigner(clusterKey, m.Config.NodeID)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		status, msg, err := m.tryJoin(ctx, client, signer, joinURL, body)
		switch {
		case err == nil && status == http.StatusOK:
			m.Logger.Info("joined the cluster", "via", joinURL, "attempts", attempt)
			return nil
		case err == nil && (status == http.StatusForbidden || status == http.StatusUnauthorized):
			return fmt.Errorf("join %s refused (%d): %s; check --cluster-key", joinURL, status, msg)
		case err != nil:
			m.Logger.Warn("join failed; retrying", "via", joinURL, "attempt", attempt, "err", err)
		default:
			m.Logger.Warn("join failed; retrying", "via", joinURL, "attempt", attempt, "status", status, "msg", msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w", joinURL, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// tryJoin sends one join request, signed with this node's proof of the
// cluster key (the key itself never leaves the node).
func (m *Main) tryJoin(ctx context.Context, client *http.Client, signer *api.NodeSigner, joinURL string, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, joinURL+"/v1/cluster/nodes", bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("join request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	proof, err := signer.Sign(req.Method, req.URL.RequestURI(), body)
	if err != nil {
		return 0, "", fmt.Errorf("join request: %w", err)
	}
	req.Header.Set(api.HeaderNodeAuth, proof)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("join request: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
