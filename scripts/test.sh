#!/usr/bin/env bash
# One command from a fresh Debian bookworm box to the whole test suite: installs what is missing,
# builds, runs the Swift tests, then the end-to-end tests against the real `carehub serve`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
./scripts/setup.sh
swift build --build-tests
swift test --skip-build
CAREHUB_BIN="$(swift build --show-bin-path)/carehub" /usr/bin/python3 -m pytest -q -p no:cacheprovider Tests/EndToEnd
