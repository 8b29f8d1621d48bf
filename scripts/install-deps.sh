#!/usr/bin/env bash
# scripts/install-deps.sh — installs every Debian 12 package danerelay needs to build, test and run
# its demo. Run as root on a fresh machine; a no-op when everything is already there.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache
  # libraries (Boost 1.81, not the default 1.74: its Asio does not compile as C++20 with g++ 12)
  libboost1.81-dev libssl-dev libunbound-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  # zlib: the spool records' CRC-32
  zlib1g-dev
  # SMTP AUTH password hashes (crypt_r: yescrypt, SHA-512-crypt, bcrypt); mkpasswd makes them
  libcrypt-dev whois
  # SMTPUTF8 recipient domains → A-labels for DNS (IDNA2008)
  libidn2-dev
  # systemd readiness, status and watchdog (sd_notify)
  libsystemd-dev
  # tests: GoogleTest/GoogleMock, ldns-keygen/ldns-signzone for the signed test hierarchy,
  # iproute2 + util-linux to run the suite in a network namespace with only loopback,
  # pflogsumm to check that operators' log tools read our delivery lines
  libgtest-dev libgmock-dev ldnsutils iproute2 util-linux pflogsumm
  # the metrics test parses the /metrics scrape with a real Prometheus exposition parser, and
  # checks that the example alert rules are valid YAML
  python3-prometheus-client python3-yaml
  # strace: the test that the spool flushes data and directory before the 250 reply
  strace
  # haproxy: the scale-out test (tests/relay/haproxy_e2e_test.cpp) runs it in front of two relays
  # with send-proxy-v2; only the binary is used, never the system service (see policy-rc.d below)
  haproxy
  # danerelay(8) is generated from the CLI help at build time; systemd: systemd.pc names the unit
  # and sysusers directories, systemd-analyze verify/security check the installed unit (tests/install)
  help2man systemd
  # the Debian package (scripts/build-deb.sh): dh, dpkg-buildpackage, lintian; man-db renders the
  # man page in tests/install
  debhelper dpkg-dev fakeroot lintian man-db
  # the posture page's browser test (tests/browser): Debian's chromium, driven headless by
  # playwright-core from npm (node and npm: see below)
  chromium
  # runtime: the root trust anchor (seeds the RFC 5011-managed copy), CA certificates for verify/secure
  dns-root-data ca-certificates openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node + npm for tests/browser (npm ci of playwright-core): Debian's nodejs and npm, unless a
# node with npm is already installed (e.g. a NodeSource nodejs, which bundles npm and conflicts
# with Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages with a daemon (haproxy) must not start it: invoke-rc.d asks /usr/sbin/policy-rc.d, and
# 101 means "action not allowed". A policy the machine already has (a container's) is left alone;
# ours is removed on every exit, a failed install included.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# installed by danerelay scripts/install-deps.sh for the duration of apt-get\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
