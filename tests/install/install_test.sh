#!/usr/bin/env bash
# tests/install/install_test.sh — `cmake --install BUILD --prefix /usr` into a DESTDIR of its own,
# then one check of what a Debian system gets (issue 11, item 5):
#   layout    exactly these files, nothing else (no test program, no /usr/etc): /usr/sbin/danerelay,
#             the unit, the sysusers file, /etc/danerelay/danerelay.toml (= config/example.toml,
#             which the installed binary's check-config accepts), danerelay(8) with every
#             subcommand and no groff warning
#   verify    systemd-analyze verify --root=DESTDIR prints nothing and exits 0; a copy of the unit
#             with a misspelt directive must make it complain (else this check could not fail)
#   security  systemd-analyze security --offline=true --root=DESTDIR: overall exposure <= 2.0
# Usage: install_test.sh MODE BUILD_DIR SOURCE_DIR UNIT_DIR SYSUSERS_DIR
#   UNIT_DIR, SYSUSERS_DIR: the configured install directories, absolute (for prefix /usr).
set -euo pipefail

mode=$1 build=$2 src=$3 unitdir=$4 sysusersdir=$5
max_exposure=2.0

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in systemd-analyze man; do
  command -v "$tool" >/dev/null || fail "$tool not installed (scripts/install-deps.sh)"
done

root=$(mktemp -d "${TMPDIR:-/tmp}/danerelay-install.XXXXXX")
trap 'rm -rf "$root"' EXIT
DESTDIR=$root cmake --install "$build" --prefix /usr >"$root.log" 2>&1 || { cat "$root.log" >&2; rm -f "$root.log"; fail "cmake --install failed"; }
rm -f "$root.log"
unit=$root$unitdir/danerelay.service

# Put what the unit refers to but the package does not ship into the root, as a Debian system has
# it: systemd's own targets (sysinit, network-online, multi-user …) and /bin/kill (ExecReload).
add_system_pieces() {
  mkdir -p "$root/usr/lib/systemd/system" "$root/bin"
  cp /lib/systemd/system/*.target "$root/usr/lib/systemd/system/"
  cp /bin/kill "$root/bin/kill"
}

# systemd-analyze verify of one unit file: "" when clean, else what it said (and its exit code).
# An unknown directive is only a warning ("Unknown key …, ignoring") with exit code 0, so any
# output counts. Documentation=man:danerelay(8) is checked by running man(1): MANPATH makes it
# find the installed page, not one of the host's.
verify_output() {
  local out rc=0
  out=$(cd "$root" && MANPATH="$root/usr/share/man" systemd-analyze verify --root="$root" "$1" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    printf 'exit %s\n%s\n' "$rc" "$out"
  fi
}

case $mode in
layout)
  # Exactly these files: anything else (a test binary, a helper, /usr/etc/…) fails.
  expected=$(printf '%s\n' /etc/danerelay/danerelay.toml "$sysusersdir/danerelay.conf" \
               "$unitdir/danerelay.service" /usr/sbin/danerelay /usr/share/man/man8/danerelay.8 | sort)
  actual=$(cd "$root" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort)
  if [ "$actual" != "$expected" ]; then
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    fail "installed files differ from the expected list (< expected, > installed)"
  fi
  [ ! -e "$root/usr/etc" ] || fail "/usr/etc exists"
  [ -x "$root/usr/sbin/danerelay" ] || fail "/usr/sbin/danerelay is not executable"
  cmp -s "$src/systemd/danerelay.service" "$unit" || fail "installed unit differs from systemd/danerelay.service"
  cmp -s "$src/systemd/danerelay.sysusers" "$root$sysusersdir/danerelay.conf" || fail "sysusers file differs"
  cmp -s "$src/config/example.toml" "$root/etc/danerelay/danerelay.toml" || fail "danerelay.toml differs from config/example.toml"
  # The shipped configuration is valid as it stands (warnings allowed: no listener may relay yet).
  out=$("$root/usr/sbin/danerelay" check-config -c "$root/etc/danerelay/danerelay.toml" 2>&1) \
    || fail "installed check-config rejects the installed danerelay.toml: $out"
  # The unit runs the installed paths.
  grep -qx 'ExecStart=/usr/sbin/danerelay run -c /etc/danerelay/danerelay.toml' "$unit" || fail "ExecStart is not the installed binary and config"
  # danerelay(8): help2man's page, one section per subcommand (and queue verb), renders cleanly.
  page=$root/usr/share/man/man8/danerelay.8
  grep -q '^\.TH DANERELAY "8"' "$page" || fail "danerelay.8 has no .TH DANERELAY \"8\""
  for sub in run check-config resolve queue "queue list" "queue show" "queue flush" "queue delete"; do
    grep -qF ".SS \"danerelay $sub\"" "$page" || fail "danerelay.8 has no section for '$sub'"
  done
  for section in SYNOPSIS DESCRIPTION OPTIONS COMMANDS FILES "EXIT STATUS" "SEE ALSO"; do
    grep -qE "^\.SH \"?$section\"?$" "$page" || fail "danerelay.8 has no $section section"
  done
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) || fail "man cannot render danerelay.8"
  [ -z "$warnings" ] || fail "groff warns about danerelay.8: $warnings"
  echo "layout: $(echo "$actual" | wc -l) files as expected"
  ;;
verify)
  add_system_pieces
  out=$(verify_output "$unit")
  [ -z "$out" ] || fail "systemd-analyze verify on the installed unit: $out"
  # Control: the same unit with one directive misspelt must not pass this check.
  broken=$root$unitdir/danerelay-typo.service
  sed 's/^WatchdogSec=/WatchdogSecc=/' "$unit" >"$broken"
  grep -q '^WatchdogSecc=' "$broken" || fail "control: no WatchdogSec= line to misspell"
  out=$(verify_output "$broken")
  [ -n "$out" ] || fail "control: systemd-analyze verify accepted a unit with WatchdogSecc="
  echo "verify: the installed unit is clean; the misspelt copy was reported: $(echo "$out" | grep -m1 WatchdogSecc)"
  ;;
security)
  add_system_pieces
  out=$(cd "$root" && systemd-analyze security --offline=true --root="$root" "$unit" 2>&1) \
    || fail "systemd-analyze security failed: $out"
  # "→ Overall exposure level for danerelay.service: 1.8 OK 🙂"
  level=$(echo "$out" | sed -n 's/.*Overall exposure level for danerelay\.service: \([0-9][0-9]*\.[0-9]\).*/\1/p')
  [ -n "$level" ] || fail "no overall exposure level in: $out"
  awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }' \
    || fail "overall exposure $level > $max_exposure; the weak points: $(echo "$out" | grep '✗')"
  echo "security: overall exposure $level (at most $max_exposure)"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
