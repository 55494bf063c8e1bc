#!/usr/bin/env bash
# Installs what CareHub needs on Debian bookworm (as root): C libraries, pkg-config, and the
# Python packages the end-to-end tests use. Swift itself is expected at /opt/swift.
set -euo pipefail

packages=(
  pkg-config
  libwebsockets-dev   # transport: WebSocket + HTTP + TLS
  libev-dev           # the transport's event loop (epoll), which libwebsockets runs on
  libssl-dev          # libcrypto: AES-256-GCM, SHA-256, HMAC, scrypt, random
  libsqlite3-dev      # storage
  libpq-dev           # PostgreSQL client library: the storage of hubs that share one database
  postgresql          # PostgreSQL server of the PostgreSQL tests; they start their own
  haproxy             # a proxy in front of several hub nodes in the multi-node tests
  python3-websockets  # end-to-end test client
  python3-pytest      # end-to-end test runner
  openssl             # TLS certificates made by the tests
  chromium            # browser tests of the pages (headless)
  chromium-driver
  python3-selenium
  zbar-tools          # scans the enrolment QR code in the browser test
  curl                # HTTP/2 client of the transport's HTTP tests
  clamav-daemon       # the scan stage's malware scanner (clamd); the tests start their own
  tzdata              # time zones of the organisations' opening hours (timezone = in pipeline.conf)
  python3-venv        # the virtual environment of the tests' tools from PyPI (below)
  glewlwyd            # OpenID Connect provider of the single sign-on tests; they start their own
  python3-cryptography  # checks the provider's token signatures in those tests
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The postgresql package starts a system-wide cluster; the tests never use it.
if dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed"; then
  systemctl disable --now postgresql >/dev/null 2>&1 || update-rc.d postgresql disable >/dev/null 2>&1 || true
fi
# The haproxy package enables a system-wide proxy; the tests start their own.
if dpkg-query -W -f='${Status}' haproxy 2>/dev/null | grep -q "install ok installed"; then
  systemctl disable --now haproxy >/dev/null 2>&1 || update-rc.d haproxy disable >/dev/null 2>&1 || true
fi
# The package enables a system-wide glewlwyd service; the tests never use it.
if dpkg-query -W -f='${Status}' glewlwyd 2>/dev/null | grep -q "install ok installed"; then
  systemctl disable --now glewlwyd >/dev/null 2>&1 || update-rc.d glewlwyd disable >/dev/null 2>&1 || true
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "setup: add /opt/swift/usr/bin to PATH" >&2
  else
    echo "setup: Swift 6 is required (expected at /opt/swift)" >&2
    exit 1
  fi
fi

# Tools from PyPI that Debian does not package, in their own virtual environment: schemathesis
# checks the HTTP API against docs/openapi.yaml.
tools="${CAREHUB_TEST_TOOLS:-/opt/carehub-test-tools}"
schemathesis_version="4.32.5"
if ! "$tools/bin/st" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  echo "setup: installing schemathesis $schemathesis_version into $tools"
  /usr/bin/python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
