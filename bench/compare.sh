#!/usr/bin/env bash
# bench/compare.sh — danerelay against Postfix IN THE SAME RUN, one table (issue 12, item 1).
#
#   bench/compare.sh [--quick] [--pairs N] [--load NAME[,NAME…]] [--mta NAME[,NAME…]]
#                                                  (as root, from a checkout; ~10 min on 2 cores, --quick ~2 min)
#   --load, --mta: only those loads / MTAs (names as in the table: dane-4KiB-x1, postfix-tuned, …),
#   e.g. to profile one of them; the ratio rows need danerelay and a Postfix variant in the run.
#
# What it does, in order:
#  1. Installs what is missing: Debian's postfix (smtp-source comes with it) and unbound, with
#     debconf postfix/main_mailer_type = "No configuration" preseeded and a temporary
#     /usr/sbin/policy-rc.d that exits 101, so no system daemon starts or takes port 25 (the
#     policy-rc.d is removed again right after, and only if this script created it). Builds
#     danerelay and bench/compare-tool (scripts/build.sh) when missing.
#  2. Re-runs itself in a private network and mount namespace (`unshare -n -m`): only loopback, so
#     nothing leaves the machine and no port of the host is taken; the mount namespace lets it
#     bind-mount its own resolv.conf ("nameserver 127.0.0.53", "options trust-ad": without
#     trust-ad glibc 2.36 clears the AD bit and Postfix silently does no DANE) over /etc/resolv.conf
#     for Postfix alone. The machine's /etc/resolv.conf, /etc/postfix and services are never touched.
#  3. Builds the signed DNS world (bench/compare_tool.cpp `world`, on tests/support/hierarchy + pki):
#     dane.test (signed, MX mx.dane.test 127.0.0.71, TLSA 3 1 1) and plain.test (unsigned, MX
#     127.0.0.72). danerelay loads it into its own libunbound (auth-zones + the world's trust
#     anchor); Postfix gets a validating Debian `unbound` daemon on 127.0.0.53:53 (inside the
#     namespace) serving the same zones with the same trust anchor.
#  4. Starts two sinks (compare-tool `sink`: one thread, counts messages, discards bodies):
#     127.0.0.71:25 with STARTTLS and the certificate the TLSA record names, 127.0.0.72:25 without
#     TLS (the plaintext destination). Their capacity alone is measured first and printed.
#  5. For every load, runs alternate the MTAs: danerelay, Postfix defaults, Postfix tuned, then the
#     reverse (A B C C B A …), --pairs times (default 4; --quick: 1 pair, small counts). Every run
#     starts a fresh instance (empty queue) in its own cgroup, sends the load, waits until the sink
#     has every message (timeout), and stops the instance.
#
# Loads (compare-tool `load`, which plays smtp-source: S concurrent sessions, a new connection per
# M messages, no PIPELINING; it is used instead of /usr/sbin/smtp-source because smtp-source does
# not report the latency of the 250 after DATA, which the load client records per message):
#   dane 4 KiB × 1 per session, dane 4 KiB × 100 per session, dane 100 KiB × 1, dane 100 KiB × 100,
#   plain 4 KiB × 1, plain 4 KiB × 100; 20 sessions each.
#
# Figures, per run:
#   accept      messages / (last 250 − first connect), as the load client saw it
#   delivered   messages / (the sink's 250 to the last message − first connect): end to end
#   p50, p99    of the time from sending "." to reading the 250 (the relay's durable commit)
#   CPU         CPU-seconds per 1,000 messages of the MTA's whole process tree (cgroup cpuacct.usage
#               or cpu.stat usage_usec, from before the load until the sink has the last message);
#               Postfix's ~20–80 processes are all counted; unbound (Postfix's resolver) is not:
#               danerelay's libunbound is in-process and counted
#   private     peak anonymous memory of the cgroup (memory.stat rss / anon, sampled every 0.1 s),
#               with the largest number of processes seen
#   steal       the machine's steal time (/proc/stat) during the run, % of all CPU time
# Table cells are median [min–max] over the runs; the ratio rows are the median [min–max] of the
# per-pair ratios danerelay / Postfix tuned (and / Postfix defaults).
#
# The MTAs:
#   danerelay   build/relay/cli/danerelay run, a generated config: listener 127.0.0.1:2525 (no TLS,
#               allow 127.0.0.0/8), policy dane, the world's libunbound files, log level info to a
#               file, its spool under /var/tmp (a real disk; every message fsync'ed before the 250 —
#               the spool always does this, there is no setting to turn it off).
#   Postfix     a private instance per run: config_directory, queue_directory, data_directory and
#               maillog_file (postlogd; no syslog) in a temp dir under /var/tmp, master.cf with
#               chroot = n, smtpd on 127.0.0.1:2525, mynetworks 127.0.0.0/8, no relayhost, the MX
#               from DNS, smtp_tls_security_level = dane, smtp_dns_support_level = dnssec.
#     defaults  nothing else changed.
#     tuned     what an operator tuning a DANE smarthost for bulk mail would set:
#               smtp_tls_connection_reuse = yes     TLS connections kept and reused via tlsproxy
#               smtp_tls_session_cache_database = btree:$data_directory/smtp_scache   resumption
#               smtp_connection_cache_on_demand = yes (the default, stated)
#               default_process_limit = 200         more smtpd/smtp processes (default 100)
#               in_flow_delay = 0s                  no smtpd throttling while the queue is busy
#               (per-destination concurrency stays 20 in both MTAs: Postfix's
#               default_destination_concurrency_limit, danerelay's max_concurrency_per_destination)
#   The script aborts unless every Postfix TLS session of a DANE run was logged "Verified" and every
#   message was logged status=sent (danerelay's log is checked the same way).
#
# Cleanup: a trap on EXIT/INT/TERM stops everything it started (every process runs in one of its
# cgroups, which are emptied with SIGKILL if a graceful stop did not do it, then removed), removes
# its temp dirs and the policy-rc.d it created; the namespaces vanish with their last process.
# The results go to stdout and to build/compare/compare-<UTC time>.md (+ .tsv with every run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
PAIRS=4
ONLY_LOADS=
ONLY_MTAS=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; PAIRS=1 ;;
    --pairs) PAIRS=$2; shift ;;
    --load) ONLY_LOADS=$2; shift ;;
    --mta) ONLY_MTAS=$2; shift ;;
    --inner) ;;  # internal: the run inside the namespaces
    *) echo "usage: bench/compare.sh [--quick] [--pairs N] [--load NAME[,NAME…]] [--mta NAME[,NAME…]]" >&2; exit 64 ;;
  esac
  shift
done

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ABORT: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (packages, namespaces, cgroups, port 25 inside the namespace)"

RELAY_BIN=$ROOT/build/relay/cli/danerelay
TOOL=$ROOT/build/bench/compare-tool

# ── cgroups: v2 when the unified hierarchy has cpu and memory, else v1 cpuacct + memory ─────────
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  CG_MODE=v2
else
  CG_MODE=v1
  CG_MEM_SELF=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
fi
CG_TAG=${COMPARE_CG_TAG:-danerelay-compare.$$}
cg_dirs() {  # NAME → the directories of that cgroup
  if [ "$CG_MODE" = v2 ]; then
    echo "/sys/fs/cgroup/$CG_TAG/$1"
  else
    echo "/sys/fs/cgroup/cpuacct/$CG_TAG/$1 /sys/fs/cgroup/memory${CG_MEM_SELF%/}/$CG_TAG/$1"
  fi
}
cg_make() {
  local d
  if [ "$CG_MODE" = v2 ]; then
    mkdir -p "/sys/fs/cgroup/$CG_TAG"
    # Controllers for our subtree (only those the parent offers; memory.peak needs memory).
    for c in cpu memory; do
      grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null && echo "+$c" >"/sys/fs/cgroup/$CG_TAG/cgroup.subtree_control" 2>/dev/null || true
    done
  fi
  for d in $(cg_dirs "$1"); do mkdir -p "$d"; done
}
cg_exec() {  # NAME CMD… : runs CMD inside the cgroup (the PID is written before exec)
  local name=$1; shift
  local d
  for d in $(cg_dirs "$name"); do echo "$BASHPID" >"$d/cgroup.procs"; done
  exec "$@"
}
cg_cpu_usec() {
  if [ "$CG_MODE" = v2 ]; then
    awk '$1 == "usage_usec" { print $2 }' "$(cg_dirs "$1")/cpu.stat"
  else
    set -- $(cg_dirs "$1")
    echo $(($(cat "$1/cpuacct.usage") / 1000))
  fi
}
cg_anon_bytes() {
  if [ "$CG_MODE" = v2 ]; then
    awk '$1 == "anon" { print $2 }' "$(cg_dirs "$1")/memory.stat" 2>/dev/null || echo 0
  else
    set -- $(cg_dirs "$1")
    awk '$1 == "total_rss" { print $2 }' "$2/memory.stat"
  fi
}
cg_procs() { set -- $(cg_dirs "$1"); wc -l <"$1/cgroup.procs"; }
cg_pids() { local d; for d in $(cg_dirs "$1"); do cat "$d/cgroup.procs" 2>/dev/null; done | sort -u; }
cg_kill() {  # NAME: SIGKILL every process left in it, wait until it is empty (≤ 5 s)
  local i p
  for i in $(seq 50); do
    p=$(cg_pids "$1")
    [ -z "$p" ] && return 0
    kill -9 $p 2>/dev/null || true
    sleep 0.1
  done
  log "warning: cgroup $1 not empty: $(cg_pids "$1" | tr '\n' ' ')"
}
cg_remove_all() {
  local top
  for top in /sys/fs/cgroup/$CG_TAG /sys/fs/cgroup/cpuacct/$CG_TAG "/sys/fs/cgroup/memory${CG_MEM_SELF:-}/$CG_TAG"; do
    [ -d "$top" ] || continue
    for d in "$top"/*/; do
      [ -d "$d" ] || continue
      cg_kill "$(basename "$d")"
      rmdir "$d" 2>/dev/null || log "warning: cannot remove $d"
    done
    rmdir "$top" 2>/dev/null || log "warning: cannot remove $top"
  done
}

# ═════════════════════════════════════════ outer part ═════════════════════════════════════════
if [ "${COMPARE_INNER:-0}" != 1 ]; then
  CREATED_POLICY_RC=0
  WORK=""
  outer_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    cg_remove_all
    [ "$CREATED_POLICY_RC" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit $rc
  }
  trap outer_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  need=()
  for p in postfix unbound; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} (no configuration, no service started)"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# bench/compare.sh: no service starts while it installs packages\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      CREATED_POLICY_RC=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
    if [ "$CREATED_POLICY_RC" = 1 ]; then rm -f /usr/sbin/policy-rc.d; CREATED_POLICY_RC=0; fi
  fi
  if [ ! -x "$RELAY_BIN" ] || [ ! -x "$TOOL" ]; then
    log "building (scripts/build.sh)"
    scripts/install-deps.sh >&2
    scripts/build.sh >&2
  fi
  mkdir -p "$ROOT/build/compare"
  WORK=$(mktemp -d /var/tmp/danerelay-compare.XXXXXX)
  chmod 755 "$WORK"
  export COMPARE_INNER=1 COMPARE_CG_TAG=$CG_TAG COMPARE_WORK=$WORK
  args=(--pairs "$PAIRS")
  [ "$QUICK" = 1 ] && args=(--quick)
  [ -n "$ONLY_LOADS" ] && args+=(--load "$ONLY_LOADS")
  [ -n "$ONLY_MTAS" ] && args+=(--mta "$ONLY_MTAS")
  # Not exec: the trap above must run after the inner part, whatever happens to it.
  unshare -n -m --propagation private "$ROOT/bench/compare.sh" --inner "${args[@]}" &
  inner=$!
  trap 'kill -TERM $inner 2>/dev/null; wait $inner; exit 130' INT
  trap 'kill -TERM $inner 2>/dev/null; wait $inner; exit 143' TERM
  wait $inner
  exit $?
fi

# ═════════════════════════════════════ inner part (namespaces) ═════════════════════════════════
WORK=$COMPARE_WORK
PF_VERSION=$(dpkg-query -W -f='${Version}' postfix)
UB_VERSION=$(dpkg-query -W -f='${Version}' unbound)
inner_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for d in "$WORK"/postfix-*/etc; do
    [ -f "$d/main.cf" ] && postfix -c "$d" stop >/dev/null 2>&1 || true
  done
  cg_remove_all
  umount /etc/resolv.conf 2>/dev/null || true
  exit $rc
}
trap inner_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip link set lo up

if [ "$QUICK" = 1 ]; then
  N_SMALL=300; N_BIG=100; N_SINK=1000
else
  N_SMALL=2000; N_BIG=500; N_SINK=4000
fi
SESSIONS=20
# name dest size per_session messages
LOADS=(
  "dane-4KiB-x1 dane 4096 1 $N_SMALL"
  "dane-4KiB-x100 dane 4096 100 $N_SMALL"
  "dane-100KiB-x1 dane 102400 1 $N_BIG"
  "dane-100KiB-x100 dane 102400 100 $N_BIG"
  "plain-4KiB-x1 plain 4096 1 $N_SMALL"
  "plain-4KiB-x100 plain 4096 100 $N_SMALL"
)
RUN_TIMEOUT=240  # seconds per run: load plus delivery
MTAS=(danerelay postfix-defaults postfix-tuned)
# --load / --mta: keep only the named ones; an unknown name is an error, not an empty run.
only() {  # VAR LIST NAME… : VAR=(the NAMEs in the comma-separated LIST; all when LIST is empty)
  local -n out=$1
  local list=$2; shift 2
  local n w
  out=()
  for w in ${list//,/ }; do
    for n in "$@"; do [ "$n" = "$w" ] && continue 2; done
    die "unknown name: $w (known: $*)"
  done
  for n in "$@"; do
    if [ -z "$list" ] || [[ ",$list," == *",$n,"* ]]; then out+=("$n"); fi
  done
}
only LOAD_NAMES "$ONLY_LOADS" $(for spec in "${LOADS[@]}"; do echo "${spec%% *}"; done)
only MTAS "$ONLY_MTAS" "${MTAS[@]}"
kept=()
for spec in "${LOADS[@]}"; do
  if [[ " ${LOAD_NAMES[*]} " == *" ${spec%% *} "* ]]; then kept+=("$spec"); fi
done
LOADS=("${kept[@]}")

# ── the world, unbound, the sinks ────────────────────────────────────────────────────────────────
log "building the signed world in $WORK/world"
"$TOOL" world "$WORK/world" >"$WORK/world.txt"
TA=$(awk '$1 == "trust_anchor" { print $2 }' "$WORK/world.txt")
UBCONF=$(awk '$1 == "unbound_conf" { print $2 }' "$WORK/world.txt")

cat >"$WORK/unbound-daemon.conf" <<EOF
# Postfix's validating resolver for bench/compare.sh: the world's auth-zones and trust anchor.
server:
    interface: 127.0.0.53
    port: 53
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    username: ""
    directory: "$WORK"
    pidfile: ""
    logfile: ""
    num-threads: 1
    module-config: "validator iterator"
    trust-anchor-file: "$TA"
include: "$UBCONF"
EOF
cg_make aux
(cg_exec aux unbound -d -c "$WORK/unbound-daemon.conf") >"$WORK/unbound.log" 2>&1 &
disown $!  # killed at the end with its cgroup: no "Killed" job report

printf 'nameserver 127.0.0.53\noptions trust-ad\n' >"$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
# (getent hosts, not ahosts: getaddrinfo's AI_ADDRCONFIG sees no address but loopback here and
# answers nothing.)
for i in $(seq 100); do
  getent hosts mx.dane.test >/dev/null 2>&1 && break
  [ "$i" = 100 ] && die "unbound did not answer within 10 s: $(cat "$WORK/unbound.log")"
  sleep 0.1
done

(cg_exec aux "$TOOL" sink 127.0.0.71 25 "$WORK/count-dane" --tls "$WORK/world/sink.chain.pem" "$WORK/world/sink.key.pem") >"$WORK/sink-dane.log" 2>&1 &
(cg_exec aux "$TOOL" sink 127.0.0.72 25 "$WORK/count-plain") >"$WORK/sink-plain.log" 2>&1 &
disown -a
for i in $(seq 100); do
  [ -s "$WORK/sink-dane.log" ] && [ -s "$WORK/sink-plain.log" ] && break
  [ "$i" = 100 ] && die "the sinks did not start"
  sleep 0.1
done

sink_count() { if [ -s "$1" ]; then awk '{ print $1 }' "$1"; else echo 0; fi; }
sink_last_ns() { if [ -s "$1" ]; then awk '{ print $2 }' "$1"; else echo 0; fi; }
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
steal_snapshot() { awk '$1 == "cpu" { print $9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

# ── the sinks alone ──────────────────────────────────────────────────────────────────────────────
SINK_CAP=""
for spec in "STARTTLS, 100 per session|--starttls --per-session 100" "STARTTLS, 1 per session|--starttls --per-session 1" "plain, 100 per session|--per-session 100"; do
  label=${spec%%|*}
  opts=${spec#*|}
  addr=127.0.0.71
  [[ $label == plain* ]] && addr=127.0.0.72
  out=$("$TOOL" load $addr 25 --sessions $SESSIONS $opts --messages $N_SINK --size 4096 --timeout 120 --rcpt u@dane.test) || die "sink capacity run failed: $out"
  rate=$(awk -v a="$(kv accepted "$out")" -v s="$(kv start_ns "$out")" -v e="$(kv end_ns "$out")" 'BEGIN { printf "%.0f", a / ((e - s) / 1e9) }')
  SINK_CAP+="${SINK_CAP:+; }$label: $rate msg/s"
  log "sink alone ($label, 4 KiB, $SESSIONS sessions): $rate msg/s"
done

# ── the MTAs ─────────────────────────────────────────────────────────────────────────────────────
RUN=0
cg_make load
start_danerelay() {  # DIR
  local d=$1
  mkdir -p "$d/state"
  cat >"$d/danerelay.toml" <<EOF
# generated by bench/compare.sh
[server]
hostname = "relay.bench.test"
state_dir = "$d/state"

[[listener]]
name = "relay"
address = "127.0.0.1:2525"
tls = "none"
allow_networks = ["127.0.0.0/8"]

[limits]
max_connections_per_client = 100

[dns]
trust_anchor = "$TA"
trust_anchor_auto_update = false
unbound_config = "$UBCONF"

[policy]
default = "dane"

[log]
target = "stderr"
level = "info"
EOF
  (cg_exec mta "$RELAY_BIN" run -c "$d/danerelay.toml") >"$d/maillog" 2>&1 &
}

write_postfix() {  # DIR VARIANT
  local d=$1 variant=$2
  mkdir -p "$d/etc" "$d/spool" "$d/data"
  chown postfix "$d/data"
  cat >"$d/etc/main.cf" <<EOF
# generated by bench/compare.sh: a private Postfix instance ($variant)
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $WORK
myhostname = relay.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
relayhost =
relay_domains =
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject
biff = no
smtp_tls_security_level = dane
smtp_dns_support_level = dnssec
smtp_tls_loglevel = 1
EOF
  if [ "$variant" = tuned ]; then
    cat >>"$d/etc/main.cf" <<EOF
# tuned: see bench/compare.sh's header for why each
smtp_tls_connection_reuse = yes
smtp_tls_session_cache_database = btree:\$data_directory/smtp_scache
smtp_connection_cache_on_demand = yes
default_process_limit = 200
in_flow_delay = 0s
EOF
  fi
  cat >"$d/etc/master.cf" <<'EOF'
# generated by bench/compare.sh: Debian's master.cf services, chroot = n, smtpd on 127.0.0.1:2525
127.0.0.1:2525 inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsproxy  unix  -       -       n       -       0       tlsproxy
EOF
}

start_postfix() {  # DIR VARIANT
  write_postfix "$1" "$2"
  (cg_exec mta postfix -c "$1/etc" start) >"$1/start.log" 2>&1 || die "postfix did not start: $(cat "$1/start.log")"
}

wait_listening() {  # timeout 20 s
  local i
  for i in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

stop_mta() {  # KIND DIR
  if [ "$1" = danerelay ]; then
    kill -TERM $(cg_pids mta) 2>/dev/null || true
  else
    postfix -c "$2/etc" stop >/dev/null 2>&1 || true
  fi
  local i
  for i in $(seq 100); do
    [ -z "$(cg_pids mta)" ] && return 0
    sleep 0.1
  done
  log "warning: $1 did not stop within 10 s; killing"
  cg_kill mta
}

check_log() {  # KIND DIR DEST N: abort unless every delivery was sent, and over Verified TLS (dane)
  local kind=$1 d=$2 dest=$3 n=$4 sent verified other
  sent=$(grep -c 'status=sent' "$d/maillog" || true)
  verified=$(grep -cE 'Verified TLS connection (established|reused)' "$d/maillog" || true)
  other=$(grep -cE '(Untrusted|Anonymous|Trusted) TLS connection (established|reused) to' "$d/maillog" || true)
  [ "$sent" -ge "$n" ] || die "$kind run $RUN: $sent of $n deliveries logged status=sent ($d/maillog)"
  if [ "$dest" = dane ]; then
    [ "$verified" -ge 1 ] && [ "$other" -eq 0 ] ||
      die "$kind run $RUN: $verified Verified and $other other TLS sessions logged for the DANE destination ($d/maillog)"
  fi
  echo "$sent $verified"
}

RESULTS=$ROOT/build/compare/compare-$(date -u +%Y%m%dT%H%M%SZ)
printf 'load\tmta\tpair\trun\taccept\tdelivered\tp50_ms\tp99_ms\tcpu_per_1000\tpriv_mib\tprocs\tsteal_pct\n' >"$RESULTS.tsv"

one_run() {  # LOAD_SPEC MTA PAIR
  local name dest size per n
  read -r name dest size per n <<<"$1"
  local mta=$2 pair=$3
  RUN=$((RUN + 1))
  local d=$WORK/$mta-$RUN
  [[ $mta == postfix* ]] && d=$WORK/postfix-$RUN
  mkdir -p "$d"
  cg_make mta
  case $mta in
    danerelay) start_danerelay "$d" ;;
    postfix-defaults) start_postfix "$d" defaults ;;
    postfix-tuned) start_postfix "$d" tuned ;;
  esac
  wait_listening || die "$mta did not listen on 127.0.0.1:2525 within 20 s: $(tail -5 "$d/maillog" 2>/dev/null)"
  local cfile=$WORK/count-$dest
  local base cpu0 st0 out
  base=$(sink_count "$cfile")
  cpu0=$(cg_cpu_usec mta)
  st0=$(steal_snapshot)
  # In a cgroup of its own: a background job of a script ignores SIGINT, so cleanup kills it there.
  (cg_exec load "$TOOL" load 127.0.0.1 2525 --sessions $SESSIONS --per-session "$per" --messages "$n" --size "$size" \
    --timeout $RUN_TIMEOUT --rcpt "u@$dest.test") >"$d/load.out" 2>&1 &
  local lpid=$! peak=0 procs=0 a p t_end
  t_end=$((SECONDS + RUN_TIMEOUT + 30))
  while :; do
    a=$(cg_anon_bytes mta); [ "${a:-0}" -gt "$peak" ] && peak=$a
    p=$(cg_procs mta); [ "$p" -gt "$procs" ] && procs=$p
    if ! kill -0 $lpid 2>/dev/null; then
      [ $(($(sink_count "$cfile") - base)) -ge "$n" ] && break
      [ "$(kv accepted "$(cat "$d/load.out")")" = "$n" ] || break  # the load failed: no point waiting
    fi
    [ $SECONDS -gt $t_end ] && break
    sleep 0.1
  done
  local cpu1 st1 delivered last
  cpu1=$(cg_cpu_usec mta)
  st1=$(steal_snapshot)
  wait $lpid || true
  out=$(cat "$d/load.out")
  delivered=$(($(sink_count "$cfile") - base))
  last=$(sink_last_ns "$cfile")
  stop_mta "$mta" "$d"
  [ "$(kv accepted "$out")" = "$n" ] || die "$mta run $RUN ($name): the load client reports: $out"
  [ "$delivered" -ge "$n" ] || die "$mta run $RUN ($name): the sink has $delivered of $n messages after ${RUN_TIMEOUT}s"
  local logcheck
  logcheck=$(check_log "$mta" "$d" "$dest" "$n")
  local row
  row=$(awk -v n="$n" -v s="$(kv start_ns "$out")" -v e="$(kv end_ns "$out")" -v l="$last" \
    -v p50="$(kv p50_ms "$out")" -v p99="$(kv p99_ms "$out")" -v c0="$cpu0" -v c1="$cpu1" -v pk="$peak" \
    -v st0="$st0" -v st1="$st1" 'BEGIN {
      split(st0, a, " "); split(st1, b, " ");
      tot = b[2] - a[2]; steal = tot > 0 ? 100 * (b[1] - a[1]) / tot : 0;
      printf "%.1f\t%.1f\t%.2f\t%.2f\t%.3f\t%.1f", n / ((e - s) / 1e9), n / ((l - s) / 1e9), p50, p99,
             (c1 - c0) / 1e6 * 1000 / n, pk / 1048576;
      printf "\t%.1f", steal }')
  IFS=$'\t' read -r r_acc r_del r_p50 r_p99 r_cpu r_priv r_steal <<<"$row"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$mta" "$pair" "$RUN" "$r_acc" "$r_del" "$r_p50" "$r_p99" \
    "$r_cpu" "$r_priv" "$procs" "$r_steal" >>"$RESULTS.tsv"
  log "run $RUN $name $mta: accept $r_acc/s, delivered $r_del/s, p50 $r_p50 ms, p99 $r_p99 ms, CPU $r_cpu s/1000, private $r_priv MiB ($procs procs), steal $r_steal % [sent, verified: $logcheck]"
  rm -rf "$d/spool" "$d/state"
}

for spec in "${LOADS[@]}"; do
  for pair in $(seq "$PAIRS"); do
    order=("${MTAS[@]}")
    if [ $((pair % 2)) = 0 ]; then order=(); for ((k = ${#MTAS[@]} - 1; k >= 0; k--)); do order+=("${MTAS[k]}"); done; fi
    for m in "${order[@]}"; do one_run "$spec" "$m" "$pair"; done
  done
done

# ── the table ────────────────────────────────────────────────────────────────────────────────────
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
{
  echo "danerelay vs Postfix $PF_VERSION (unbound $UB_VERSION), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($CPU_MODEL), kernel $(uname -r)"
  echo "$PAIRS pair(s) per load, runs alternating (danerelay, Postfix defaults, Postfix tuned, then reversed); $SESSIONS sessions;"
  echo "$N_SMALL messages per 4 KiB run, $N_BIG per 100 KiB run; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "The sink alone (4 KiB, $SESSIONS sessions): $SINK_CAP"
  echo
  /usr/bin/env python3 - "$RESULTS.tsv" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
loads = list(dict.fromkeys(r["load"] for r in rows))
mtas = ["danerelay", "postfix-defaults", "postfix-tuned"]
figs = [("accept", "accept msg/s", "{:,.0f}"), ("delivered", "delivered msg/s", "{:,.0f}"), ("p50_ms", "p50 ms", "{:.2f}"),
        ("p99_ms", "p99 ms", "{:.2f}"), ("cpu_per_1000", "CPU-s / 1,000 msgs", "{:.2f}"), ("priv_mib", "private MiB", "{:.1f}")]
def cell(vals, fmt):
    return f"{fmt.format(statistics.median(vals))} [{fmt.format(min(vals))}–{fmt.format(max(vals))}]"
print("| load | MTA | " + " | ".join(f[1] for f in figs) + " | procs | steal % |")
print("| --- | --- | " + " | ".join("---" for _ in figs) + " | --- | --- |")
for load in loads:
    by = {m: [r for r in rows if r["load"] == load and r["mta"] == m] for m in mtas}
    for m in mtas:
        rs = by[m]
        if not rs: continue
        cells = [cell([float(r[k]) for r in rs], fmt) for k, _, fmt in figs]
        procs = max(int(r["procs"]) for r in rs)
        print(f"| {load} | {m} | " + " | ".join(cells) + f" | {procs} | " + cell([float(r["steal_pct"]) for r in rs], "{:.1f}") + " |")
    for other in ["postfix-tuned", "postfix-defaults"]:
        ratios = []
        for k, _, _ in figs:
            pairs = {r["pair"]: float(r[k]) for r in by[other]}
            rr = [float(r[k]) / pairs[r["pair"]] for r in by["danerelay"] if r["pair"] in pairs and pairs[r["pair"]] > 0]
            ratios.append(cell(rr, "{:.2f}×") if rr else "–")
        print(f"| {load} | danerelay / {other} | " + " | ".join(ratios) + " | | |")
EOF
} | tee "$RESULTS.md"
log "written: $RESULTS.md and $RESULTS.tsv"
