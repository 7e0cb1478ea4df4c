"""The verdict logic of benchmarks/bench_scaling.py (pure functions; no stage is timed)."""

from __future__ import annotations

import gc
import importlib.util
import math
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_scaling.py"
_SPEC = importlib.util.spec_from_file_location("bench_scaling", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

SIZES = bench.SIZES
TAIL = bench.TAIL_SIZES


def power(sizes, exponent, scale=1e-3):
    return [scale * k ** exponent for k in sizes]


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_growth_exponent_recovers_a_power_law(exponent):
    assert math.isclose(bench.growth_exponent(SIZES, power(SIZES, exponent)), exponent, abs_tol=1e-9)


def test_growth_exponent_rejects_bad_input():
    with pytest.raises(ValueError):
        bench.growth_exponent([1, 2], [1.0])
    with pytest.raises(ValueError):
        bench.growth_exponent([4, 4], [1.0, 2.0])


def test_linear_times_with_noise_are_linear():
    # +-15 % on every point, in the direction that steepens the slope most.
    times = [t * f for t, f in zip(power(SIZES, 1.0), (0.85, 0.85, 1.0, 1.15, 1.15))]
    result = bench.verdict(SIZES, times)
    assert result.label == bench.LINEAR and result.ok and not result.needs_tail
    assert result.exponent < 1.2


def test_quadratic_needs_the_tail_and_is_superlinear():
    first = bench.verdict(SIZES, power(SIZES, 2.0))
    assert first.needs_tail and not first.ok and math.isclose(first.exponent, 2.0)
    result = bench.verdict(SIZES, power(SIZES, 2.0), TAIL, power(TAIL, 2.0))
    assert result.label == bench.SUPERLINEAR and not result.ok
    assert math.isclose(result.tail_exponent, 2.0)


def test_growth_that_starts_late_is_caught_by_the_top_exponent():
    # linear up to 8x, then quadratic: the fit over all sizes only reaches 1.2
    times = [1e-3, 2e-3, 4e-3, 8e-3, 32e-3]
    first = bench.verdict(SIZES, times)
    assert math.isclose(first.exponent, 1.2) and math.isclose(first.top_exponent, 1.5)
    assert first.needs_tail
    result = bench.verdict(SIZES, times, TAIL, [8e-3, 32e-3, 128e-3])
    assert result.label == bench.SUPERLINEAR


def test_top_exponent_is_the_marginal_ratio_over_two_doublings():
    assert math.isclose(bench.top_exponent(SIZES, [1, 2, 4, 8, 16]), 1.0)
    assert math.isclose(bench.top_exponent(SIZES, [1, 1, 1, 4, 16]), 2.0)


def test_one_step_then_linear_passes_as_a_step():
    times = [1e-3, 2e-3, 4e-3, 24e-3, 48e-3]  # 6x more per byte from 8x on
    assert bench.verdict(SIZES, times).needs_tail
    result = bench.verdict(SIZES, times, TAIL, [24e-3, 48e-3, 96e-3])
    assert result.label == bench.STEP and result.ok
    assert math.isclose(result.tail_exponent, 1.0)


def test_too_fast_only_for_tiny_times():
    tiny = [0.08e-6, 0.3e-6, 1.2e-6, 5e-6, 19e-6]  # quadratic, but 0.019 ms at 16x
    result = bench.verdict(SIZES, tiny)
    assert result.label == bench.TOO_FAST_LABEL and result.ok and result.exponent > 1.2
    # the same growth over a measurable time is not excused
    assert bench.verdict(SIZES, [t * 100 for t in tiny]).needs_tail


def test_measure_many_times_each_job_and_restores_gc():
    calls = []
    was_enabled = gc.isenabled()
    times = bench.measure_many([(calls.append, 1), (calls.append, 2)], repeat=2, min_time=0.0005)
    assert len(times) == 2 and all(0 < t < 0.001 for t in times)
    assert calls.count(1) > 2 and calls.count(2) > 2
    assert gc.isenabled() == was_enabled and gc.get_freeze_count() == 0
