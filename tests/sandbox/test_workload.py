"""Workloads: profiles are deterministic and shaped as named, CSV parsing, the Spender's burns."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.clock import VirtualClock
from sandbox import demo
from sandbox.workload import (
    DAY,
    PROFILES,
    Spender,
    Transfer,
    Workload,
    WorkloadError,
    load_workload,
    parse_csv,
    profile,
)
from sandbox.world import World

SENDERS = [demo.watched_address(n) for n in range(4)]


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_are_deterministic_by_seed_and_sorted(name: str) -> None:
    one = profile(name, SENDERS, days=2, seed=7)
    assert one == profile(name, SENDERS, days=2, seed=7)
    assert one != profile(name, SENDERS, days=2, seed=8)
    times = [t.at for t in one.transfers]
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 2 * DAY
    assert set(one.senders) == set(SENDERS)
    if name == "deposits":  # one sweep per deposit address, to the hot wallet (a holder)
        assert len(one.transfers) == len(SENDERS) and not any(t.fresh for t in one.transfers)
        return
    assert 0 < sum(t.fresh for t in one.transfers) < len(one.transfers)
    # about one transfer per sender per hour (bursts add some; `week` runs at 1.25)
    assert 0.5 * 4 * 48 < len(one.transfers) < 2.5 * 4 * 48


def test_daily_profile_is_quiet_at_night_and_busy_in_the_afternoon() -> None:
    transfers = profile("daily", SENDERS, days=20, seed=1).transfers
    hours = [int((t.at % DAY) // 3600) for t in transfers]
    night = sum(1 for h in hours if 2 <= h < 5)
    afternoon = sum(1 for h in hours if 14 <= h < 17)
    assert afternoon > 5 * night


def test_bursty_profile_has_bursts() -> None:
    transfers = profile("bursty", SENDERS[:1], days=5, seed=3).transfers
    per_ten_minutes: dict[int, int] = {}
    for t in transfers:
        per_ten_minutes[int(t.at // 600)] = per_ten_minutes.get(int(t.at // 600), 0) + 1
    assert max(per_ten_minutes.values()) >= 4  # steady at 1/h would almost never do this


def test_unknown_profile_or_missing_file_is_an_error() -> None:
    with pytest.raises(WorkloadError, match="steady"):
        profile("spiky", SENDERS, days=1)
    with pytest.raises(WorkloadError, match="neither a profile"):
        load_workload("no-such-file.csv", SENDERS, days=1)


def test_csv_times_count_from_the_first_days_midnight_and_are_cut_to_days(tmp_path: Path) -> None:
    a, b = SENDERS[:2]
    text = (
        "time,sender,recipient_holds_usdt\n"
        f"2026-01-01T10:00:00Z,{a},true\n"
        f"1767265200,{b},no\n"  # 2026-01-01T11:00:00Z
        f"2026-01-03T10:00:00+00:00,{a},1\n"
    )
    path = tmp_path / "history.csv"
    path.write_text(text)
    loaded = load_workload(str(path), [], days=1)
    assert [(t.at, t.sender, t.fresh) for t in loaded.transfers] == [
        (36_000.0, a, False),
        (39_600.0, b, True),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2026-01-01T10:00:00Z,{a},maybe", ":2: recipient_holds_usdt 'maybe'"),
        ("2026-01-01T10:00:00,{a},true", ":2: time .* no time zone"),
        ("yesterday,{a},true", ":2: "),
        ("1767261600,0xabc,true", ":2: sender '0xabc'"),
    ],
)
def test_csv_errors_name_the_line(row: str, message: str) -> None:
    lines = ["time,sender,recipient_holds_usdt\n", row.format(a=SENDERS[0]) + "\n"]
    with pytest.raises(WorkloadError, match=message):
        parse_csv(lines, name="h.csv")
    with pytest.raises(WorkloadError, match="header"):
        parse_csv(["when,who\n"], name="h.csv")


def test_spender_burns_without_energy_and_not_with_it() -> None:
    clock = VirtualClock()
    world = World(clock=clock, watched=2)
    rich, poor = world.watched
    staker = demo.key_address("test-staker")
    world.fund(staker, 1_000_000)
    world.chain.stake_energy(staker, 900_000 * 1_000_000)
    world.chain.delegate_energy(staker, rich, world.chain.sun_for_energy(200_000))
    fee = world.chain.params.energy_fee
    load = Workload(
        "t",
        (
            Transfer(10, rich, False),
            Transfer(20, poor, False),
            Transfer(30, poor, True),
            Transfer(99, rich, False),
        ),
    )
    spender = Spender(world.chain, load, start=clock.now(), seed=1)
    made = spender.run_until(clock.now() + 40, set_time=clock.set)
    assert [r.sender for r in made] == [rich, poor, poor] and not spender.done
    assert all(r.ok for r in made) and clock.now() == spender.start + 30
    first, second, third = made
    assert (first.energy_used, first.burned_sun) == (64_285, 0)
    assert (second.energy_used, second.burned_sun) == (0, 64_285 * fee)
    assert (third.energy_total, third.burned_sun) == (130_285, 130_285 * fee)
    assert spender.next_at() == spender.start + 99
    assert spender.run_until(clock.now() + 100)[0].burned_sun == 0 and spender.done


def test_spender_refills_senders_low_on_trx() -> None:
    world = World(clock=VirtualClock(), watched=1, watched_trx=1)
    (sender,) = world.watched
    load = Workload("t", (Transfer(0, sender, False),))
    spender = Spender(world.chain, load, start=world.clock.now())
    (record,) = spender.run_until(world.clock.now())
    assert record.ok and record.burned_sun > 0 and spender.refilled_sun == 1_000 * 1_000_000


def test_an_exported_workload_reads_back_the_same(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli import main
    from sandbox.workload import read_csv
    from tests.sandbox.test_simulating import POLICY

    (tmp_path / "policy.yaml").write_text(POLICY)
    target = tmp_path / "week.csv"
    result = CliRunner().invoke(
        main,
        ["simulate", "-f", str(tmp_path / "policy.yaml"), "--workload", "bursty",
         "--seed", "5", "--days", "1", "--export-workload", str(target)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    played = profile("bursty", [demo.watched_address(0)], days=1, seed=5)
    back = read_csv(target)
    assert [(round(t.at, 3), t.sender, t.fresh) for t in back.transfers] == [
        (round(t.at, 3), t.sender, t.fresh) for t in played.transfers
    ]
