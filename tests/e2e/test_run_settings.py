"""`energyctl run` with bad flags and ENERGYCTL_* values: one line, exit 1, no traceback.

A table test of the real CLI: each bad value is refused at start-up with one line on
stderr naming the flag or variable, before the loop or the HTTP server starts. The
policy set is the sandbox's (valid, its node on a closed loopback port): with the old
parsing, the start succeeded and the bad value surfaced later as a traceback. The unit
forms people write (`10m`, `5 TRX`) are accepted: a sidecar given them serves and stops
with 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sandbox import demo
from sandbox.world import World
from tests.e2e.sandboxed import ENERGYCTL
from tests.e2e.test_run_sidecar import _free_port

PORTS = {"node": 9, **{vendor: 10 + n for n, vendor in enumerate(demo.VENDORS)}}

BAD: list[tuple[str, list[str], dict[str, str], str]] = [
    ("listen-garbage", ["--listen", "garbage"], {}, "--listen"),
    ("listen-port-99999", ["--listen", "127.0.0.1:99999"], {}, "--listen"),
    ("listen-no-port", ["--listen", "127.0.0.1:"], {}, "--listen"),
    ("env-listen-negative", [], {"ENERGYCTL_LISTEN": "127.0.0.1:-1"}, "ENERGYCTL_LISTEN"),
    ("reload-interval-word", ["--reload-interval", "soon"], {}, "--reload-interval"),
    ("stop-grace-negative", ["--stop-grace", "-1"], {}, "--stop-grace"),
    ("lease-ttl-too-short", ["--lease-ttl", "0.1"], {}, "--lease-ttl"),
    ("shards-too-many", ["--shards", "5000"], {}, "--shards"),
    ("env-shards-word", [], {"ENERGYCTL_SHARDS": "many"}, "ENERGYCTL_SHARDS"),
    ("env-log-format", [], {"ENERGYCTL_LOG_FORMAT": "xml"}, "ENERGYCTL_LOG_FORMAT"),
    ("allow-secret-garbage", ["--allow-secret", "garbage"], {}, "--allow-secret"),
    (
        "env-allow-secrets",
        [],
        {"ENERGYCTL_ALLOW_SECRETS": "file:relative"},
        "ENERGYCTL_ALLOW_SECRETS",
    ),
    (
        "env-intent-grace-unit",
        [],
        {"ENERGYCTL_INTENT_GRACE": "1 fortnight"},
        "ENERGYCTL_INTENT_GRACE",
    ),
    (
        "below-for-word",
        [],
        {"ENERGYCTL_ALERT_BELOW_FOR": "ten minutes"},
        "ENERGYCTL_ALERT_BELOW_FOR",
    ),
    (
        "balance-floor-usdt",
        [],
        {"ENERGYCTL_ALERT_BALANCE_FLOOR_SUN": "5 USDT"},
        "ENERGYCTL_ALERT_BALANCE_FLOOR_SUN",
    ),
    (
        "webhook-unclosed-bracket",
        [],
        {"ENERGYCTL_ALERT_WEBHOOK_URL": "http://[::1"},
        "ENERGYCTL_ALERT_WEBHOOK_URL",
    ),
    (
        "webhook-not-http",
        [],
        {"ENERGYCTL_ALERT_WEBHOOK_URL": "hooks.example/alert"},
        "ENERGYCTL_ALERT_WEBHOOK_URL",
    ),
    (
        "telegram-api-port",
        [],
        {"ENERGYCTL_TELEGRAM_API_URL": "https://api.telegram.org:70000"},
        "ENERGYCTL_TELEGRAM_API_URL",
    ),
    (
        "telegram-chat-without-token",
        [],
        {"ENERGYCTL_TELEGRAM_CHAT_ID": "42"},
        "ENERGYCTL_TELEGRAM_BOT_TOKEN",
    ),
]


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    World(ports=PORTS).write_policies(tmp_path)
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYCTL_")}
    return {**env, **demo.env_values(), **extra}


@pytest.mark.parametrize(("case", "args", "env", "named"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_setting_is_one_line_and_exit_1(
    policies: Path, case: str, args: list[str], env: dict[str, str], named: str
) -> None:
    if "--listen" not in args and "ENERGYCTL_LISTEN" not in env:
        args = [*args, "--listen", f"127.0.0.1:{_free_port()}"]
    result = subprocess.run(
        [ENERGYCTL, "run", "-f", str(policies), *args],
        env=_env(**env), capture_output=True, text=True, timeout=30, cwd=policies, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {named}: "), lines[0]


def test_the_unit_forms_people_write_are_accepted(policies: Path) -> None:
    port = _free_port()
    env = _env(
        ENERGYCTL_ALERT_BELOW_FOR="10m",
        ENERGYCTL_ALERT_BALANCE_FLOOR_SUN="5 TRX",
        ENERGYCTL_LISTEN=f"127.0.0.1:{port}",
        ENERGYCTL_RELOAD_INTERVAL="2s",
        ENERGYCTL_STOP_GRACE="1m",
    )
    log = policies / "sidecar.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [ENERGYCTL, "run", "-f", str(policies), "--log-format", "json"],
            env=env, cwd=policies, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in log.read_text()
