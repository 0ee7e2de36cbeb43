#!/usr/bin/env bash
# Runs the register or calls bench against Kamailio 5.6 (Debian packages
# kamailio, kamailio-tls-modules) on this machine, to re-measure the
# issues' anchors where the benches run:
#
#   bash host/benches/anchors/kamailio.sh register|calls
#
# It makes a throw-away CA and a certificate for example.test, starts
# Kamailio with kamailio.cfg on a free loopback port, runs the bench
# binary with PBX_BENCH_PEER (its TLS address), PBX_BENCH_PEER_PIDS
# (every Kamailio process: their CPU times are summed) and
# PBX_BENCH_PEER_CA, and stops Kamailio afterwards.
#
# TCP_CHILDREN (default 1) sets Kamailio's TLS workers. Debian's 5.6.3
# with OpenSSL 3 only works with one: in a second worker every handshake
# fails ("unsupported algorithm") or the worker crashes. KEEP=1 copies
# Kamailio's log to /tmp/kamailio-last.log.
set -euo pipefail
bench="${1:?register or calls}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
command -v kamailio >/dev/null || { echo "kamailio.sh: install the Debian packages kamailio and kamailio-tls-modules" >&2; exit 2; }
work="$(mktemp -d)"
kpid=""
cleanup() {
    [ -n "$kpid" ] && kill "$kpid" 2>/dev/null || true
    sleep 0.5
    pkill -f "$work/kamailio.cfg" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp "$work/kamailio.log" /tmp/kamailio-last.log
    rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=example.test" \
    -keyout "$work/key.pem" -out "$work/req.pem" 2>/dev/null
printf 'subjectAltName=DNS:example.test\nbasicConstraints=CA:FALSE\n' > "$work/ext"
openssl x509 -req -in "$work/req.pem" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/ext" -out "$work/cert.pem" 2>/dev/null
cat > "$work/tls.cfg" <<TLS
[server:default]
method = TLSv1.2+
certificate = $work/cert.pem
private_key = $work/key.pem
verify_certificate = no
require_certificate = no
TLS
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cp "$here/kamailio.cfg" "$work/kamailio.cfg"
kamailio -DD -f "$work/kamailio.cfg" -P "$work/kamailio.pid" -m 1024 -M 16 \
    -A "LISTEN=tls:127.0.0.1:$port" -A "TCPCHILDREN=${TCP_CHILDREN:-1}" -A "TLSCFG=\"$work/tls.cfg\"" -E 2>"$work/kamailio.log" &
for _ in $(seq 100); do
    [ -s "$work/kamailio.pid" ] && python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
    sleep 0.1
done
kpid="$(cat "$work/kamailio.pid")"
sleep 1 # every child forked
pids="$(pgrep -d, -f "$work/kamailio.cfg")"
echo "kamailio $(kamailio -v | sed -n 's/^version: //p') on tls:127.0.0.1:$port, processes $pids"
binary="$(ls -t "$root"/target/release/deps/"$bench"-* | grep -v '\.d$' | head -1)"
PBX_BENCH_PEER="127.0.0.1:$port" PBX_BENCH_PEER_PIDS="$pids" PBX_BENCH_PEER_CA="$work/ca.pem" \
    timeout 600 "$binary"
