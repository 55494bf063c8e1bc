"""The benchmark tool runs a short scenario correctly against the hub and against the relay.
(It measures speed; this test checks only that it measures, not how fast anything is.)"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, Hub, carehub

BENCH = str(Path(BIN).with_name("carehub-bench"))
RELAY = str(Path(BIN).with_name("carehub-relay"))


def bench(*args):
    result = subprocess.run([BENCH, "--json", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check(report, target):
    assert report["target"] == target and report["scenario"] == "load"
    assert report["acked"] > 0 and report["acked"] == report["sent"] and report["unacknowledged"] == 0
    assert report["delivered"] == report["acked"]  # every room has one subscriber
    assert report["errors"] == {}
    for key in ("ack_latency", "deliver_latency"):
        latency = report[key]
        assert latency["count"] > 0
        assert latency["p50_us"] <= latency["p99_us"] <= latency["p999_us"] <= latency["max_us"]
    assert report["rss_kib"] > 0


# The bench is one address sending far beyond any patient or front desk: it runs with the limits
# lifted, as scripts/bench.sh does.
LIFTED = ("limits conversations_per_minute=100000 conversations_per_address_per_minute=100000 "
          "messages_per_second=100000 message_burst=100000")
UNLIMITED = ["--max-connections-per-address", "1000000", "--max-logins-per-address", "1000000", "--max-logins", "1000000"]


@pytest.fixture
def hub(workdir):
    config = workdir / "pipeline.conf"
    text = config.read_text()
    config.write_text(text.replace("hipaa = on\n", f"hipaa = on\n{LIFTED}\n").replace("hipaa = off\n", f"hipaa = off\n{LIFTED}\n"))
    running = Hub(workdir, config)
    running.extra_args = UNLIMITED
    running.start()
    yield running
    running.stop()


def test_bench_against_the_hub_and_the_relay(hub):
    for index in (1, 2):
        carehub("user", "add", "--org", "riverside-clinic", "--user", f"bench.staff{index}", "--data", str(hub.data),
                "--config", str(hub.config), stdin="bench-staff-password-2026\n")
    check(bench("--port", str(hub.port), "--visitors", "4", "--staff", "2", "--duration", "1", "--server-pid", str(hub.proc.pid)), "hub")

    relay = subprocess.Popen([RELAY, "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(relay.stdout.readline().split(":")[-1].split("/")[0])
        check(bench("--target", "relay", "--port", str(port), "--visitors", "4", "--staff", "2", "--duration", "1",
                    "--server-pid", str(relay.pid)), "relay")
        # The load again with quiet connections held open beside it.
        loaded = bench("--target", "relay", "--port", str(port), "--visitors", "4", "--staff", "2", "--duration", "1",
                       "--quiet", "30", "--server-pid", str(relay.pid))
        check(loaded, "relay")
        assert loaded["quiet"] == 30
        idle = bench("--target", "relay", "--port", str(port), "--idle", "50", "--server-pid", str(relay.pid))
        assert idle["connections"] == 50 and idle["errors"] == {} and "rss_per_connection_kib" in idle
    finally:
        relay.terminate()
        assert relay.wait(timeout=20) == 0


def test_bench_measures_the_machines_own_stalls():
    started = time.monotonic()
    report = bench("--stalls", "0.3")
    elapsed_ms = (time.monotonic() - started) * 1000
    assert report["scenario"] == "stalls" and report["duration_s"] == 0.3
    cpus = report["cpus"]
    assert cpus == len(os.sched_getaffinity(0)) or cpus == os.cpu_count()
    for key in ("off_core_percent", "stalls_over_1ms", "longest_stall_ms"):
        assert len(report[key]) == cpus
    assert all(0 <= p <= 100 for p in report["off_core_percent"])
    assert all(n >= 0 for n in report["stalls_over_1ms"])
    # The longest gap between two readings of the clock is positive and inside the bench's lifetime.
    assert all(0 < m <= elapsed_ms for m in report["longest_stall_ms"])


def test_bench_refuses_a_load_without_a_port():
    result = subprocess.run([BENCH, "--visitors", "2"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--port PORT (1-65535) is required, except with --stalls or --storage-floor" in result.stderr


def test_bench_measures_what_sqlite_costs_per_message():
    report = bench("--storage-floor", "7", "--messages", "150", "--visitors", "4")
    assert report["scenario"] == "storage-floor"
    assert (report["batch"], report["messages"], report["conversations"]) == (7, 150, 4)
    # Read back from the database it wrote: every message and its delivery record was committed.
    assert report["stored"] == {"messages": 150, "delivery_records": 150}
    for key in ("cpu_us_per_message", "cpu_us_per_message_without_audit", "messages_per_s", "messages_per_s_without_audit"):
        assert report[key] > 0


def test_bench_refuses_an_empty_storage_floor_batch():
    result = subprocess.run([BENCH, "--storage-floor", "0"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--storage-floor takes a batch of 1-10000 messages" in result.stderr
