#!/usr/bin/env bash
# The race (a benchmark, not a test): the same N single-name certificates, dns-01 with
# RFC 2136 updates to BIND, from Pebble (sleeps off), issued by dcvd, lego and certbot,
# each at its defaults and at its fastest working settings, in one run on one machine.
# Everything runs inside a network namespace whose only interface is lo, so nothing can
# leave the machine, and a private mount namespace whose /etc/resolv.conf names BIND on
# 127.0.0.1 (lego's propagation check resolves the zone's NS names with the system
# resolver whatever --dns.resolvers says; with this, every tool runs at its defaults). Prints total and per-certificate seconds and dcvd's ratios.
#
# Usage: scripts/race.sh                         # the full matrix (certbot defaults at
#                                                # N=100 alone take ~100 minutes)
#        RACE_RUNS="dcvd:fastest:10 lego:defaults:10" scripts/race.sh
# Runs are tool:mode:N with tool dcvd|lego|certbot, mode defaults|fastest. A run listed
# more than once is repeated (fresh names and state each time) and its median is used:
#        RACE_RUNS="$(printf 'dcvd:defaults:1 %.0s' 1 2 3 4 5)" scripts/race.sh
# Needs (Debian): pebble bind9 lego certbot python3-certbot-dns-rfc2136 openssl iproute2,
# and a built dcvd (target/debug/dcvd; built here if missing). Run as root (unshare -n).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${RACE_IN_NETNS:-}" ]; then
    [ -x target/debug/dcvd ] || cargo build --quiet --bin dcvd
    exec unshare -n -m --propagation private env RACE_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up

RUNS=${RACE_RUNS:-"dcvd:defaults:10 dcvd:fastest:10 lego:defaults:10 lego:fastest:10 certbot:defaults:10 certbot:fastest:10 dcvd:defaults:100 dcvd:fastest:100 lego:defaults:100 lego:fastest:100 certbot:defaults:100 certbot:fastest:100"}
W=$(mktemp -d /tmp/dcvd-race.XXXXXX)
printf 'nameserver 127.0.0.1\n' > "$W/resolv.conf"
mount --bind "$W/resolv.conf" /etc/resolv.conf
ZONE=race.test
PIDS=()
cleanup() {
    [ -f "$W/dcvd.pid" ] && kill "$(cat "$W/dcvd.pid")" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }

# ---- BIND on 127.0.0.1:53 (inside the namespace), zone race.test, TSIG-signed updates.
SECRET=$(openssl rand -base64 32)
mkdir -p "$W/bind"
cat > "$W/bind/named.conf" <<CONF
options {
    directory "$W/bind";
    pid-file "$W/bind/named.pid";
    listen-on port 53 { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    allow-query { any; };
};
key "race" { algorithm hmac-sha256; secret "$SECRET"; };
zone "$ZONE" { type primary; file "$W/bind/$ZONE.zone"; allow-update { key "race"; }; };
CONF
cat > "$W/bind/$ZONE.zone" <<ZF
\$TTL 60
@ IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 60
@ IN NS ns1.$ZONE.
ns1 IN A 127.0.0.1
ZF
named -g -u root -c "$W/bind/named.conf" > "$W/bind/named.log" 2>&1 &
PIDS+=($!)

# ---- Pebble with a throwaway TLS CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=race Pebble TLS root" -keyout "$W/tls-root.key" -out "$W/tls-root.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$W/tls.key" -out "$W/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$W/tls.ext"
openssl x509 -req -in "$W/tls.csr" -CA "$W/tls-root.pem" -CAkey "$W/tls-root.key" \
    -CAcreateserial -days 2 -extfile "$W/tls.ext" -out "$W/tls.pem" 2>/dev/null
cat > "$W/pebble.json" <<PJ
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
 "certificate": "$W/tls.pem", "privateKey": "$W/tls.key", "httpPort": 5002, "tlsPort": 5001,
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
PJ
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$W/pebble.json" -dnsserver 127.0.0.1:53 > "$W/pebble.log" 2>&1 &
PIDS+=($!)
DIR_URL=https://127.0.0.1:14000/dir
for _ in $(seq 200); do
    curl -sf --cacert "$W/tls-root.pem" "$DIR_URL" >/dev/null && dig +short @127.0.0.1 ns1.$ZONE A | grep -q 127.0.0.1 && break
    sleep 0.05
done
curl -sf --cacert "$W/tls-root.pem" "$DIR_URL" >/dev/null || { log "pebble did not start"; cat "$W/pebble.log" >&2; exit 1; }

RUN_NO=0
names() { # tool mode n → the run's certificate names (fresh for every run)
    for i in $(seq "$3"); do printf 'c%s.%s-%s-%s-r%s.%s\n' "$i" "$1" "$2" "$3" "$RUN_NO" "$ZONE"; done
}

run_dcvd() { # mode n
    local d="$W/dcvd-$1-$2-r$RUN_NO" fast=$([ "$1" = fastest ] && echo 1 || true)
    mkdir -p "$d"
    printf '%s' "$SECRET" > "$d/tsig.key"
    {
        printf '[daemon]\ndatabase = "%s/dcvd.db"\nlisten = "127.0.0.1:0"\n' "$d"
        [ -n "$fast" ] && printf 'concurrency = %s\n' "$2"
        printf '[providers.pebble]\nkind = "acme"\ndirectory_url = "%s"\nca_file = "%s"\nterms_accepted = true\n' "$DIR_URL" "$W/tls-root.pem"
        [ -n "$fast" ] && printf 'poll_interval = "50ms"\nrate_limits = []\n'
        printf '[publishers.bind]\nkind = "rfc2136"\nserver = "127.0.0.1:53"\ntsig_key_name = "race"\ntsig_secret_file = "%s/tsig.key"\n' "$d"
        [ -n "$fast" ] && printf '[dns]\npoll_interval = "50ms"\n'
        local i=0
        for n in $(names dcvd "$1" "$2"); do
            i=$((i + 1))
            printf '[[certificates]]\nname = "c%s"\nprovider = "pebble"\ncommon_name = "%s"\npublisher = "bind"\noutput_dir = "%s/certs/c%s"\n' "$i" "$n" "$d" "$i"
        done
    } > "$d/dcvd.toml"
    local t0; t0=$(now)
    "$ROOT/target/debug/dcvd" --config "$d/dcvd.toml" run > "$d/dcvd.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$W/dcvd.pid"   # killed on exit too, should the run be interrupted
    while [ "$(find "$d/certs" -name fullchain.pem 2>/dev/null | wc -l)" -lt "$2" ]; do
        kill -0 "$pid" 2>/dev/null || { log "dcvd exited; see $d/dcvd.log"; return 1; }
        sleep 0.02
    done
    local t1; t1=$(now)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "$t0 $t1"
}

run_lego() { # mode n: one `lego run` per certificate, one after another (its documented use)
    local d="$W/lego-$1-$2-r$RUN_NO" extra=() t0 t1
    mkdir -p "$d"
    export LEGO_CA_CERTIFICATES="$W/tls-root.pem" RFC2136_NAMESERVER=127.0.0.1:53 \
        RFC2136_TSIG_KEY=race RFC2136_TSIG_SECRET="$SECRET" RFC2136_TSIG_ALGORITHM=hmac-sha256.
    if [ "$1" = fastest ]; then
        extra=(--dns.disable-cp)
        export RFC2136_POLLING_INTERVAL=1 RFC2136_PROPAGATION_TIMEOUT=60 RFC2136_SEQUENCE_INTERVAL=1
    else
        unset RFC2136_POLLING_INTERVAL RFC2136_PROPAGATION_TIMEOUT RFC2136_SEQUENCE_INTERVAL
    fi
    t0=$(now)
    for n in $(names lego "$1" "$2"); do
        lego --accept-tos --email race@$ZONE --server "$DIR_URL" --path "$d" \
            --dns rfc2136 --dns.resolvers 127.0.0.1:53 "${extra[@]}" --domains "$n" run \
            >> "$d/lego.log" 2>&1 || { log "lego failed for $n; see $d/lego.log"; return 1; }
    done
    t1=$(now)
    echo "$t0 $t1"
}

run_certbot() { # mode n: one `certbot certonly` per certificate, one after another
    local d="$W/certbot-$1-$2-r$RUN_NO" extra=() t0 t1
    mkdir -p "$d"
    printf 'dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = 53\ndns_rfc2136_name = race\ndns_rfc2136_secret = %s\ndns_rfc2136_algorithm = HMAC-SHA256\n' "$SECRET" > "$d/rfc2136.ini"
    chmod 600 "$d/rfc2136.ini"
    [ "$1" = fastest ] && extra=(--dns-rfc2136-propagation-seconds 0)
    t0=$(now)
    for n in $(names certbot "$1" "$2"); do
        REQUESTS_CA_BUNDLE="$W/tls-root.pem" certbot certonly --non-interactive --agree-tos \
            -m race@$ZONE --server "$DIR_URL" --dns-rfc2136 --dns-rfc2136-credentials "$d/rfc2136.ini" \
            "${extra[@]}" -d "$n" --config-dir "$d/etc" --work-dir "$d/work" --logs-dir "$d/logs" \
            >> "$d/certbot.log" 2>&1 || { log "certbot failed for $n; see $d/certbot.log"; return 1; }
    done
    t1=$(now)
    echo "$t0 $t1"
}

declare -A TOTALS TOTAL
printf '%-8s %-9s %5s %10s %10s\n' tool settings N total_s per_cert_s
for r in $RUNS; do
    IFS=: read -r tool mode n <<< "$r"
    RUN_NO=$((RUN_NO + 1))
    if ! times=$("run_$tool" "$mode" "$n"); then
        printf '%-8s %-9s %5s %10s\n' "$tool" "$mode" "$n" failed
        continue
    fi
    read -r t0 t1 <<< "$times"
    total=$(echo "$t1 - $t0" | bc -l)
    TOTALS[$tool:$mode:$n]+="$total "
    printf '%-8s %-9s %5s %10.2f %10.3f\n' "$tool" "$mode" "$n" "$total" "$(echo "$total / $n" | bc -l)"
done

for key in "${!TOTALS[@]}"; do # median of repeated runs
    read -r -a v <<< "$(tr ' ' '\n' <<< "${TOTALS[$key]}" | grep . | sort -g | tr '\n' ' ')"
    TOTAL[$key]=${v[$(( ${#v[@]} / 2 ))]}
    if [ "${#v[@]}" -gt 1 ]; then
        IFS=: read -r tool mode n <<< "$key"
        printf '%-8s %-9s %5s median of %s runs: %.2f s\n' "$tool" "$mode" "$n" "${#v[@]}" "${TOTAL[$key]}"
    fi
done

echo
echo "ratios (the other tool's total / dcvd's total, same settings and N):"
for key in "${!TOTAL[@]}"; do
    IFS=: read -r tool mode n <<< "$key"
    [ "$tool" = dcvd ] || continue
    for other in lego certbot; do
        o=${TOTAL[$other:$mode:$n]:-}
        [ -n "$o" ] && printf '  %-9s N=%-4s %-8s is %8.1fx slower than dcvd\n' "$mode" "$n" "$other" "$(echo "$o / ${TOTAL[$key]}" | bc -l)"
    done
done
echo "work directory (logs, configs, certificates): $W"
