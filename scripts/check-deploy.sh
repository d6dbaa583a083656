#!/usr/bin/env bash
# Checks everything under deploy/: systemd units (verify + offline security score),
# sysusers/tmpfiles snippets, Prometheus rules and their unit tests, the Grafana dashboard.
# Installs promtool (Debian package `prometheus`) when missing. Non-interactive; run as root
# on a CI machine (CI=true, no stdin). Exit status 0 only if every check passed.
#
#   scripts/check-deploy.sh            # from anywhere inside the repository
#   MAX_EXPOSURE=1.5 scripts/check-deploy.sh
set -uo pipefail

export DEBIAN_FRONTEND=noninteractive
MAX_EXPOSURE="${MAX_EXPOSURE:-2.0}"
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$ROOT_DIR/deploy"
UNITS=(dcvd.service dcvd-reload@.path dcvd-reload@.service)
# Template units are verified as an instance.
VERIFY_NAMES=(dcvd.service dcvd-reload@example.path dcvd-reload@example.service)

failures=()
fail() {
    failures+=("$1")
    echo "FAIL: $1" >&2
}
pass() { echo "ok:   $1"; }
step() { echo; echo "== $*"; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- tools -------------------------------------------------------------------------
step "tools"
need_cmd() {
    if ! command -v "$1" >/dev/null 2>&1; then
        fail "$1 not found ($2)"
        return 1
    fi
}
if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        fail "promtool missing and not root: cannot apt-get install prometheus"
    elif ! command -v apt-get >/dev/null 2>&1; then
        fail "promtool missing and no apt-get: install Prometheus' promtool by hand"
    else
        echo "promtool missing: apt-get update && apt-get install -y prometheus"
        if apt-get update -q </dev/null &&
            apt-get install -y -q --no-install-recommends prometheus </dev/null; then
            pass "installed prometheus (promtool)"
        else
            fail "apt-get install prometheus failed"
        fi
    fi
fi
have_systemd=1; have_promtool=1; have_python=1
need_cmd systemd-analyze "part of systemd" || have_systemd=0
need_cmd promtool "Debian package prometheus" || have_promtool=0
need_cmd python3 "Debian package python3" || have_python=0
[ "$have_systemd" = 1 ] && echo "systemd-analyze: $(systemd-analyze --version | head -n1)"
[ "$have_promtool" = 1 ] && echo "promtool: $(promtool --version 2>&1 | head -n1)"

for f in "${UNITS[@]}" dcvd.sysusers dcvd.tmpfiles prometheus-alerts.yml \
    prometheus-alerts.test.yml grafana-dashboard.json; do
    [ -f "$DEPLOY/$f" ] || fail "deploy/$f is missing"
done

# --- systemd-analyze verify ------------------------------------------------------------
# `verify` insists that every ExecStart= binary exists, and /usr/bin/dcvd is usually not
# installed where this runs. So the units are verified inside a scratch root (--root=):
# the host's own unit files (for targets like network-online.target) plus ours, the
# host's real binaries for every Exec path, and a stub only for /usr/bin/dcvd if the host
# has none. Warnings (e.g. unknown keys) exit 0 in systemd-analyze, so any output fails.
if [ "$have_systemd" = 1 ]; then
    step "systemd-analyze verify"
    R="$WORK/root"
    mkdir -p "$R/etc/systemd/system" "$R/usr/lib/systemd"
    for d in /usr/lib/systemd/system /lib/systemd/system; do
        [ -d "$d" ] && cp -a "$d/." "$R/usr/lib/systemd/system/" 2>/dev/null
    done
    for u in "${UNITS[@]}"; do cp "$DEPLOY/$u" "$R/etc/systemd/system/"; done
    # Absolute program paths of Exec*= lines, without systemd's prefixes (-@+!:).
    mapfile -t exes < <(cd "$DEPLOY" && grep -h -E '^[[:space:]]*Exec[A-Za-z]*=' "${UNITS[@]}" |
        sed -E 's/^[^=]*=[[:space:]]*[-@+!:]*//; s/[[:space:]].*$//' | sort -u)
    for exe in "${exes[@]}"; do
        case "$exe" in /*) ;; *) fail "Exec path '$exe' is not absolute"; continue ;; esac
        mkdir -p "$R$(dirname "$exe")"
        if [ -x "$exe" ]; then
            cp -L "$exe" "$R$exe"
        elif [ "$exe" = /usr/bin/dcvd ]; then
            printf '#!/bin/sh\nexit 0\n' >"$R$exe" && chmod 755 "$R$exe"
            echo "(no /usr/bin/dcvd on this host: using a stub for verify)"
        else
            fail "Exec path $exe does not exist on this host"
        fi
    done
    echo "+ systemd-analyze verify --root=$R ${VERIFY_NAMES[*]}"
    out="$(systemd-analyze verify --root="$R" "${VERIFY_NAMES[@]}" 2>&1)"
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        printf '%s\n' "$out" >&2
        fail "systemd-analyze verify (exit $rc, output above)"
    else
        pass "systemd-analyze verify: ${VERIFY_NAMES[*]}"
    fi

    # --- security score ------------------------------------------------------------------
    step "systemd-analyze security (max exposure $MAX_EXPOSURE)"
    echo "+ systemd-analyze security --offline=true $DEPLOY/dcvd.service"
    out="$(systemd-analyze security --offline=true "$DEPLOY/dcvd.service" 2>&1)"
    rc=$?
    printf '%s\n' "$out" | grep -E '^✗|Overall exposure'
    level="$(printf '%s\n' "$out" | sed -n -E 's/.*Overall exposure level for [^:]*: ([0-9]+(\.[0-9]+)?).*/\1/p' | tail -n1)"
    if [ -z "$level" ]; then
        printf '%s\n' "$out" >&2
        fail "systemd-analyze security: no 'Overall exposure level' line (exit $rc)"
    elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l > m) }'; then
        fail "dcvd.service exposure $level > $MAX_EXPOSURE"
    else
        pass "dcvd.service exposure $level <= $MAX_EXPOSURE"
    fi

    # --- sysusers / tmpfiles in a scratch root ----------------------------------------------
    step "systemd-sysusers / systemd-tmpfiles (scratch root)"
    S="$WORK/sysroot"
    mkdir -p "$S/usr/lib/sysusers.d" "$S/usr/lib/tmpfiles.d" "$S/etc"
    cp "$DEPLOY/dcvd.sysusers" "$S/usr/lib/sysusers.d/dcvd.conf"
    cp "$DEPLOY/dcvd.tmpfiles" "$S/usr/lib/tmpfiles.d/dcvd.conf"
    if ! command -v systemd-sysusers >/dev/null || ! command -v systemd-tmpfiles >/dev/null; then
        fail "systemd-sysusers/systemd-tmpfiles not found"
    elif ! out="$(systemd-sysusers --root="$S" 2>&1)"; then
        printf '%s\n' "$out" >&2; fail "systemd-sysusers rejected dcvd.sysusers"
    elif ! grep -q '^dcvd:' "$S/etc/passwd"; then
        fail "dcvd.sysusers did not create user dcvd"
    elif ! out="$(systemd-tmpfiles --root="$S" --create 2>&1)" || [ -n "$out" ]; then
        printf '%s\n' "$out" >&2; fail "systemd-tmpfiles rejected dcvd.tmpfiles"
    else
        uid="$(awk -F: '$1=="dcvd"{print $3}' "$S/etc/passwd")"
        gid="$(awk -F: '$1=="dcvd"{print $3}' "$S/etc/group")"
        want="/var/lib/dcvd 700 $uid $gid|/var/lib/dcvd/certs 750 $uid $gid|/etc/dcvd 750 0 $gid"
        got="$(for p in /var/lib/dcvd /var/lib/dcvd/certs /etc/dcvd; do
            stat -c "$p %a %u %g" "$S$p" 2>/dev/null || echo "$p missing"; done | paste -sd'|')"
        if [ "$got" = "$want" ]; then
            pass "sysusers/tmpfiles: $got"
        else
            fail "tmpfiles result '$got', expected '$want'"
        fi
    fi
fi

# --- Prometheus rules ------------------------------------------------------------------------
if [ "$have_promtool" = 1 ]; then
    step "promtool"
    echo "+ promtool check rules deploy/prometheus-alerts.yml"
    if promtool check rules "$DEPLOY/prometheus-alerts.yml"; then
        pass "promtool check rules"
    else
        fail "promtool check rules deploy/prometheus-alerts.yml"
    fi
    echo "+ promtool test rules deploy/prometheus-alerts.test.yml"
    if promtool test rules "$DEPLOY/prometheus-alerts.test.yml"; then
        pass "promtool test rules"
    else
        fail "promtool test rules deploy/prometheus-alerts.test.yml"
    fi
fi

# --- Grafana dashboard -----------------------------------------------------------------------
if [ "$have_python" = 1 ]; then
    step "Grafana dashboard"
    echo "+ python3 -m json.tool deploy/grafana-dashboard.json"
    if python3 -m json.tool "$DEPLOY/grafana-dashboard.json" >/dev/null; then
        pass "grafana-dashboard.json is valid JSON"
        # Every panel query must parse as PromQL: wrap them as recording rules for promtool
        # (dashboard variables replaced by plain values).
        if [ "$have_promtool" = 1 ]; then
            if python3 - "$DEPLOY/grafana-dashboard.json" "$WORK/dashboard-queries.yml" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
if not isinstance(d.get("schemaVersion"), int):
    problems.append("schemaVersion missing")
if not any(v.get("type") == "datasource" for v in d.get("templating", {}).get("list", [])):
    problems.append("no datasource variable")
exprs = [t["expr"] for p in d.get("panels", []) for t in p.get("targets", []) if "expr" in t]
if not exprs:
    problems.append("no panel queries")
subst = {"$__rate_interval": "5m", "$instance": ".*", "$provider": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    rules.append({"record": "dashboard:query%d" % i, "expr": e})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
for p in problems:
    print("dashboard: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
                if out="$(promtool check rules "$WORK/dashboard-queries.yml" 2>&1)"; then
                    pass "dashboard structure and PromQL queries"
                else
                    printf '%s\n' "$out" >&2
                    fail "a dashboard query is not valid PromQL"
                fi
            else
                fail "dashboard structure (schemaVersion / datasource variable / queries)"
            fi
        fi
    else
        fail "python3 -m json.tool deploy/grafana-dashboard.json"
    fi
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "check-deploy: ${#failures[@]} check(s) FAILED:" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "check-deploy: all checks passed"
