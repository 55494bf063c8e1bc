# Sourced by the scripts: puts Swift on PATH and moves to the repository root.
export PATH="/opt/swift/usr/bin:$PATH"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
