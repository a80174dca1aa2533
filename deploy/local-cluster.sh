#!/usr/bin/env bash
# Three local nodes of The Eye in the foreground; Ctrl-C stops all three.
# Usage: deploy/local-cluster.sh [path/to/theeye]
set -euo pipefail
BIN=${1:-bin/theeye}
DATA=${THEEYE_CLUSTER_DIR:-./theeye-cluster}
# Keys: from the environment, else those of an earlier run (kept in
# $DATA/keys.env, mode 0600), else fresh random ones; never well-known ones.
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
mkdir -p "$DATA"
if [ -f "$DATA/keys.env" ]; then . "$DATA/keys.env"; fi
ADMIN=${THEEYE_ADMIN_KEY:-${ADMIN:-eye_admin_$(random)}}
CLUSTER_KEY=${THEEYE_CLUSTER_KEY:-${CLUSTER_KEY:-eye_cluster_$(random)}}
(umask 077; printf 'ADMIN=%s\nCLUSTER_KEY=%s\n' "$ADMIN" "$CLUSTER_KEY" > "$DATA/keys.env")
pids=()
stop() {
  echo "stopping the cluster…"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 130' INT TERM
for i in 1 2 3; do
  args=(serve --node-id "n$i" --data-dir "$DATA/n$i" --http "127.0.0.1:918$i" --raft "127.0.0.1:928$i"
        --admin-key "$ADMIN" --cluster-key "$CLUSTER_KEY")
  [ "$i" -gt 1 ] && args+=(--join http://127.0.0.1:9181)
  "$BIN" "${args[@]}" 2> >(sed -u "s/^/[n$i] /" >&2) &
  pids+=($!)
done
cat <<MSG

The Eye: three nodes
  n1  http://127.0.0.1:9181  raft 127.0.0.1:9281  data $DATA/n1
  n2  http://127.0.0.1:9182  raft 127.0.0.1:9282  data $DATA/n2
  n3  http://127.0.0.1:9183  raft 127.0.0.1:9283  data $DATA/n3
  admin key:   $ADMIN
  cluster key: $CLUSTER_KEY (a fourth node joins with --cluster-key)
  cluster:   curl -H "Authorization: Bearer $ADMIN" http://127.0.0.1:9182/v1/cluster
Ctrl-C stops all three.

MSG
wait
