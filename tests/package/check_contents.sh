#!/usr/bin/env bash
# tests/package/check_contents.sh — reads a built danerelay .deb (dpkg-deb -c, -f, -I) and checks
# that it is what debian/ promises (issue 11, item 5). scripts/build-deb.sh runs it on every build.
#   * files: exactly /usr/sbin/danerelay, the unit, the sysusers file, /etc/danerelay/danerelay.toml,
#     danerelay(8) gzip'd, the changelog and copyright; so no test program, no helper, no /usr/etc
#   * /etc/danerelay/danerelay.toml is a conffile
#   * Depends: dns-root-data, ca-certificates, a systemd-sysusers provider, the shared libraries
#   * postinst creates the user with the shipped sysusers file and the state directory, and does
#     not enable the unit (dh_installsystemd --no-enable); postrm removes the state dir on purge
# Usage: check_contents.sh PACKAGE.deb
set -euo pipefail

deb=$1
failures=0
fail() { echo "check_contents: FAIL: $*" >&2; failures=$((failures + 1)); }
[ -f "$deb" ] || { echo "check_contents: no such file: $deb" >&2; exit 2; }

# Regular files and symlinks, as absolute paths (dpkg-deb -c prints "./usr/sbin/danerelay").
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print p }' | sort)
unit=$(echo "$files" | grep -E '^(/usr)?/lib/systemd/system/danerelay\.service$' || true)
[ "$(echo "$unit" | grep -c .)" -eq 1 ] || fail "not exactly one danerelay.service in /lib or /usr/lib/systemd/system: '$unit'"
expected=$(printf '%s\n' /usr/sbin/danerelay "$unit" /usr/lib/sysusers.d/danerelay.conf \
             /etc/danerelay/danerelay.toml /usr/share/man/man8/danerelay.8.gz \
             /usr/share/doc/danerelay/changelog.gz /usr/share/doc/danerelay/copyright | sort)
if [ "$files" != "$expected" ]; then
  fail "files differ from the expected list (< expected, > in the package):"
  diff <(echo "$expected") <(echo "$files") >&2 || true
fi
if echo "$files" | grep -qE '^/usr/etc/'; then fail "/usr/etc in the package"; fi
if echo "$files" | grep -qE '(_tests|test|demo|bench)[^/]*$'; then fail "a test program or helper: $(echo "$files" | grep -E '(_tests|test|demo|bench)[^/]*$')"; fi

conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
echo "$conffiles" | grep -qx '/etc/danerelay/danerelay.toml' || fail "/etc/danerelay/danerelay.toml is not a conffile (conffiles: '$conffiles')"

depends=$(dpkg-deb -f "$deb" Depends)
for dep in dns-root-data ca-certificates 'systemd | systemd-sysusers' libc6 libunbound8 libssl3 libsystemd0; do
  echo ", $depends," | grep -qF " $dep" || fail "Depends lacks '$dep': $depends"
done

postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null || true)
[ -n "$postinst" ] || fail "no postinst"
echo "$postinst" | grep -qE '^\s*systemd-sysusers .*danerelay\.conf' || fail "postinst does not run systemd-sysusers danerelay.conf"
echo "$postinst" | grep -qE 'chown danerelay:danerelay "\$statedir"' || fail "postinst does not give the state directory to danerelay"
echo "$postinst" | grep -q 'statedir=/var/lib/danerelay' || fail "postinst state directory is not /var/lib/danerelay"
# dh_installsystemd --no-enable writes the "dont-enable" snippet: enable only when the admin had
# enabled the unit before (debian-installed + was-enabled); the default snippet enables on install.
echo "$postinst" | grep -qE "deb-systemd-helper debian-installed '?danerelay\.service'?" || fail "postinst would enable the unit (no --no-enable snippet)"
if echo "$postinst" | grep -q 'was-enabled defaults to true'; then fail "postinst enables the unit on a new install"; fi
postrm=$(dpkg-deb -I "$deb" postrm 2>/dev/null || true)
for script in postinst postrm; do
  out=$(dpkg-deb -I "$deb" "$script" | sh -n 2>&1) || fail "$script is not valid sh: $out"
done
echo "$postrm" | grep -qx '    rm -rf /var/lib/danerelay' || fail "postrm does not remove /var/lib/danerelay"
echo "$postrm" | awk '/rm -rf \/var\/lib\/danerelay/ { exit !in_purge } /if \[ "\$1" = "purge" \]/ { in_purge = 1 } /^fi/ { in_purge = 0 }' \
  || fail "postrm removes /var/lib/danerelay outside purge"

if [ "$failures" -ne 0 ]; then
  echo "check_contents: $failures check(s) failed for $deb" >&2
  exit 1
fi
echo "check_contents: $deb: $(echo "$files" | wc -l) files, conffile, Depends, postinst and postrm as expected"
