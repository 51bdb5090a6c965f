"""What the engine learns of an address's use (engine/core/usage.py), read by read."""

from __future__ import annotations

from engine.core.usage import DAY, HOUR, UsageProfile, forecast, observe

T0 = 1_767_225_600.0  # a UTC midnight
A = "TPrke8B1kK6VZxNBcr7FayTswfJG8ohMuS"


def _steady(per_hour: int, hours: int, *, step: float = 600.0) -> UsageProfile:
    """Reads every `step` seconds of an address drawing `per_hour` energy an hour."""
    profile = UsageProfile(A)
    used = 0.0
    t = T0
    profile = observe(profile, used=0, limit=10_000_000, at=t)
    for _ in range(int(hours * HOUR / step)):
        t += step
        used = used * (1 - step / DAY) + per_hour * step / HOUR
        profile = observe(profile, used=round(used), limit=10_000_000, at=t)
    return profile


def test_a_steady_sender_is_learned_within_a_day() -> None:
    profile = _steady(75_000, 30)
    fc = forecast(profile)
    assert fc.known and fc.source == "observed"
    assert abs(fc.per_day - 1_800_000) / 1_800_000 < 0.05
    # its used energy settles near 12 hours of draws
    peak = fc.peak_usage(T0 + 30 * HOUR, 0.0, 3 * DAY)
    assert 11 * 75_000 < peak < 13 * 75_000


def test_before_a_day_without_a_declaration_nothing_is_assumed() -> None:
    fc = forecast(_steady(75_000, 6))
    assert not fc.known and fc.source == "learning"
    declared = forecast(_steady(75_000, 6), prior_per_day=1_000_000)
    assert declared.known and declared.source == "declared"
    assert forecast(None, prior_per_day=2_400_000).rates[5] * HOUR == 100_000


def test_a_delegation_that_ends_is_not_counted_as_use() -> None:
    profile = observe(UsageProfile(A), used=500_000, limit=1_000_000, at=T0)
    # the limit fell (a rental ended) and used energy moved away with it
    after = observe(profile, used=600_000, limit=800_000, at=T0 + 60)
    assert sum(after.hourly) == 0 and after.observed_seconds == 60
    # a rise with the limit unchanged is use
    more = observe(after, used=665_000, limit=800_000, at=T0 + 120)
    assert 64_000 < sum(more.hourly) < 66_000


def test_a_long_gap_between_reads_counts_nothing() -> None:
    profile = observe(UsageProfile(A), used=0, limit=1_000_000, at=T0)
    after = observe(profile, used=300_000, limit=1_000_000, at=T0 + 3 * HOUR)
    assert sum(after.hourly) == 0 and after.observed_seconds == 0


def test_old_use_fades_by_half_every_three_days() -> None:
    profile = _steady(75_000, 24)
    before = sum(profile.hourly)
    later = observe(profile, used=profile.last_used, limit=10_000_000, at=T0 + 27 * HOUR)
    # the 3 h gap is not counted, but the decay applies
    assert abs(sum(later.hourly) / before - 0.5 ** (3 / 72)) < 0.01


def test_a_burst_is_remembered() -> None:
    profile = observe(UsageProfile(A), used=0, limit=2_000_000, at=T0)
    used = 0
    for i in range(1, 7):  # six payouts in ten minutes
        used += 65_000
        profile = observe(profile, used=used, limit=2_000_000, at=T0 + i * 100)
    assert profile.burst > 380_000
    assert forecast(profile, prior_per_day=100_000).burst == profile.burst


def test_use_per_day_and_last_week() -> None:
    profile = _steady(10_000, 24 * 8, step=1800)
    assert 7 * 230_000 < profile.last_week(T0 + 8 * DAY) < 7 * 250_000
    round_trip = UsageProfile.from_json(A, profile.to_json(), profile.updated_at)
    assert round_trip.days == profile.days and round_trip.last_used == profile.last_used
