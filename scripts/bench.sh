#!/usr/bin/env bash
# Benchmark: the full pipeline against the raw relay, on this machine, in one run.
#   ./scripts/bench.sh                      # defaults below
#   VISITORS=200 STAFF=20 DURATION=20 RATE=5000 IDLE=10000 ./scripts/bench.sh
# Builds release binaries, starts a fresh hub (temporary data directory, the repository's
# pipeline.conf with its limits lifted) and the relay, runs the scenarios, prints each report and the ratios.
set -euo pipefail
source "$(dirname "$0")/env.sh"
./scripts/setup.sh
swift build -c release --product carehub >/dev/null
swift build -c release --product carehub-bench >/dev/null
swift build -c release --product carehub-relay >/dev/null
bin="$(swift build -c release --show-bin-path)"

VISITORS="${VISITORS:-100}"; STAFF="${STAFF:-10}"; DURATION="${DURATION:-10}"
RATE="${RATE:-5000}"; IDLE="${IDLE:-10000}"
work="$(mktemp -d)"
cleanup() { kill "${hub_pid:-}" "${relay_pid:-}" "${clamd_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)"
# Staff accounts; a HIPAA org's accounts enrol their second factor at first login, so each
# HIPAA scenario gets its own set.
add_staff() {
  for i in $(seq 1 "$STAFF"); do
    printf '%s\n' "bench-staff-password-2026" | "$bin/carehub" user add --org "$1" --user "$2$i" --data "$work/data" >/dev/null
  done
}
add_staff riverside-clinic bench.max
add_staff riverside-clinic bench.rate
add_staff riverside-clinic bench.quiet
add_staff lotus-wellness bench.staff
# The bench is one address sending far beyond any patient or front desk: the hub runs the
# repository's pipeline.conf with each organisation's limits lifted, and no per-address caps.
lifted="limits conversations_per_minute=100000 conversations_per_address_per_minute=100000 messages_per_second=100000 message_burst=100000"
# Attachments on in both organisations; the HIPAA one scans them with a clamd of the bench's own
# (a signature file it writes, as the tests do: no signature download here).
mkdir -p "$work/clamd/db"
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf 'CareHub.Test.EICAR:0:*:%s\n' "$(printf '%s' "$eicar" | od -An -tx1 | tr -d ' \n')" >"$work/clamd/db/carehub-test.ndb"
printf '%s\n' "Foreground yes" "LocalSocket $work/clamd/clamd.sock" "DatabaseDirectory $work/clamd/db" \
  "StreamMaxLength 60M" "LogFile $work/clamd/clamd.log" >"$work/clamd/clamd.conf"
/usr/sbin/clamd --config-file="$work/clamd/clamd.conf" >/dev/null 2>&1 &
clamd_pid=$!
sed -e "s/^hipaa = \(on\|off\)\$/&\n$lifted\nattachments max_size=10MB/" \
    -e "s|^#   stage scan .*|stage scan engine=clamd socket=$work/clamd/clamd.sock on_error=reject|" pipeline.conf >"$work/pipeline.conf"
unlimited=(--max-connections-per-address 1000000 --max-logins-per-address 1000000 --max-logins 1000000)
# Free ports, read back from what each server prints when it listens.
"$bin/carehub" serve --config "$work/pipeline.conf" "${unlimited[@]}" --data "$work/data" --listen 127.0.0.1:0 --log-level warning >"$work/hub.out" 2>"$work/hub.err" &
hub_pid=$!
"$bin/carehub-relay" 0 >"$work/relay.out" 2>&1 &
relay_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/hub.out" 2>/dev/null && grep -q "listening on" "$work/relay.out" 2>/dev/null && break
  sleep 0.1
done
hub_port="$(sed -n 's|^CareHub listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/hub.out")"
relay_port="$(sed -n 's|^carehub-relay listening on ws://127.0.0.1:\([0-9]*\)/ws|\1|p' "$work/relay.out")"
[ -n "$hub_port" ] && [ -n "$relay_port" ] || { echo "bench: servers did not start"; cat "$work/hub.err" "$work/relay.out"; exit 1; }

run() { sleep 2; "$bin/carehub-bench" --json --duration "$DURATION" "$@"; }
results="$work/results"
mkdir -p "$results"
# The machine's own noise, before and after the load, so that each run's latencies come with their hour's stalls.
stalls() { echo "== stalls of a spinning thread per CPU, $1 the load"; "$bin/carehub-bench" --json --stalls 5 | tee "$results/stalls-$1.json"; }
stalls before
echo "== relay, as fast as possible";          run --target relay --port "$relay_port" --visitors "$VISITORS" --staff "$STAFF" --server-pid "$relay_pid" | tee "$results/relay-max.json"
echo "== HIPAA org, as fast as possible";       run --port "$hub_port" --org riverside-clinic --staff-prefix bench.max --visitors "$VISITORS" --staff "$STAFF" --server-pid "$hub_pid" | tee "$results/hipaa-max.json"
echo "== non-HIPAA org, as fast as possible";   run --port "$hub_port" --org lotus-wellness --visitors "$VISITORS" --staff "$STAFF" --server-pid "$hub_pid" | tee "$results/lotus-max.json"
echo "== relay at $RATE msg/s";                 run --target relay --port "$relay_port" --visitors "$VISITORS" --staff "$STAFF" --rate "$RATE" --window 64 --server-pid "$relay_pid" | tee "$results/relay-rate.json"
echo "== HIPAA org at $RATE msg/s";             run --port "$hub_port" --org riverside-clinic --staff-prefix bench.rate --visitors "$VISITORS" --staff "$STAFF" --rate "$RATE" --window 64 --server-pid "$hub_pid" | tee "$results/hipaa-rate.json"
echo "== $IDLE idle connections (hub)";         run --port "$hub_port" --org lotus-wellness --idle "$IDLE" --server-pid "$hub_pid" | tee "$results/idle.json"
# After the idle scenario, whose RSS per connection must be measured on a hub that has not held them yet.
echo "== HIPAA org at $RATE msg/s, $IDLE quiet connections open"; run --port "$hub_port" --org riverside-clinic --staff-prefix bench.quiet --visitors "$VISITORS" --staff "$STAFF" --rate "$RATE" --window 64 --quiet "$IDLE" --server-pid "$hub_pid" | tee "$results/hipaa-rate-quiet.json"
for _ in $(seq 1 100); do [ -S "$work/clamd/clamd.sock" ] && break; sleep 0.1; done
echo "== a 5 MB file uploaded and downloaded, HIPAA org (sealed, scanned by clamd)"; run --port "$hub_port" --org riverside-clinic --attachment 5000000 --repeats 10 | tee "$results/attachment-hipaa.json"
echo "== a 5 MB file uploaded and downloaded, non-HIPAA org (plain, no scan)";   run --port "$hub_port" --org lotus-wellness --attachment 5000000 --repeats 10 | tee "$results/attachment-plain.json"
# The servers stop first: closing 10,000 connections takes the hub most of a second of CPU.
kill "$hub_pid" "$relay_pid"; wait "$hub_pid" "$relay_pid" 2>/dev/null || true; hub_pid=; relay_pid=
stalls after
# What SQLite itself costs per HIPAA message at the hub's batch sizes (about 3 per commit at
# 5,000 msg/s, tens at full speed), with no server running: a floor under the hub's storage cost.
for batch in 3 30; do
    echo "== storage floor, $batch messages per commit"
    "$bin/carehub-bench" --json --storage-floor "$batch" --visitors "$VISITORS" | tee "$results/floor-$batch.json"
done
/usr/bin/python3 - "$results" <<'PY'
import json, sys, pathlib
r = {p.stem: json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*.json")}
ratio = r["hipaa-max"]["acked_per_s"] / r["relay-max"]["acked_per_s"]
print(f"\nfull HIPAA pipeline / raw relay (max rate): {r['hipaa-max']['acked_per_s']:.0f} / {r['relay-max']['acked_per_s']:.0f} msg/s = {ratio:.0%}")
print(f"non-HIPAA org / raw relay (max rate): {r['lotus-max']['acked_per_s']/r['relay-max']['acked_per_s']:.0%}")
for name in ("hipaa-rate", "hipaa-rate-quiet", "relay-rate"):
    x = r[name]
    print(f"{name}: offered {x['offered_rate']}/s with {x['quiet']} quiet connections, acked {x['acked_per_s']:.0f}/s, send->deliver p50 {x['deliver_latency']['p50_us']/1000:.2f} ms, p99 {x['deliver_latency']['p99_us']/1000:.2f} ms, p99.9 {x['deliver_latency']['p999_us']/1000:.2f} ms")
for name in ("stalls-before", "stalls-after"):
    x = r[name]
    print(f"{name}: per CPU off core {', '.join(f'{p:.1f}%' for p in x['off_core_percent'])}; stalls over 1 ms {x['stalls_over_1ms']} in {x['duration_s']:.0f} s; longest {', '.join(f'{m:.1f}' for m in x['longest_stall_ms'])} ms")
for batch in (3, 30):
    x = r[f"floor-{batch}"]
    print(f"storage floor at {batch} per commit (SQLite alone): {x['cpu_us_per_message']:.0f} us CPU per HIPAA message, {x['cpu_us_per_message_without_audit']:.0f} us without its audit row")
for name in ("attachment-hipaa", "attachment-plain"):
    x = r[name]
    print(f"{name}: {x['bytes']/1e6:.0f} MB upload {x['upload_ms_median']:.0f} ms ({x['upload_mb_per_s']:.0f} MB/s), download {x['download_ms_median']:.0f} ms ({x['download_mb_per_s']:.0f} MB/s); cat {x['cat_ms_median']:.1f} ms ({x['cat_mb_per_s']:.0f} MB/s): upload {x['upload_vs_cat']:.0f}x, download {x['download_vs_cat']:.0f}x cat")
print(f"idle connections: {r['idle']['connections']} at {r['idle'].get('rss_per_connection_kib', float('nan')):.1f} KiB RSS each")
PY
