#!/usr/bin/env bash
# One command from a fresh Debian bookworm box to the whole test suite: installs what is missing,
# builds, runs the Swift tests, then the end-to-end tests against the real `carehub serve`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
./scripts/setup.sh
swift build --build-tests
# One test at a time: the transport's tests bind ports and check which addresses answer, which a
# test binding the same port number on another address at the same moment would confuse.
swift test --skip-build --no-parallel
CAREHUB_BIN="$(swift build --show-bin-path)/carehub" /usr/bin/python3 -m pytest -q -p no:cacheprovider Tests/EndToEnd
