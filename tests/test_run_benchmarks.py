"""The verdicts ``benchmarks/run_benchmarks.py`` prints, on made-up measurements."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "run_benchmarks.py"
_SPEC = importlib.util.spec_from_file_location("run_benchmarks", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("run_benchmarks", bench)
_SPEC.loader.exec_module(bench)

M = bench.Measurement


def _results(docs: int, reference_s: float, reference_2w_s: float, one_s: float, two_s: float) -> list:
    return [M("reference (Beam + ftfy)", docs, 1, reference_s, 100.0),
            M("reference 2 workers (multi_processing)", docs, 1, reference_2w_s, 200.0),
            M("newswash 1 worker", docs, 1, one_s, 300.0),
            M("newswash 2 workers (multi_processing)", docs, 1, two_s, 400.0)]


def test_ratios_compare_like_with_like_and_give_verdicts():
    lines = bench.ratios(_results(1000, reference_s=100.0, reference_2w_s=60.0, one_s=25.0, two_s=10.0), [1000])
    text = "\n".join(lines)
    assert "newswash 1 worker / reference = 4.00x docs/s (target >= 5x: MISSED)" in text
    assert "newswash 2 workers / reference 2 workers = 6.00x docs/s" in text
    assert "newswash 2 workers / 1 worker = 2.50x docs/s (target >= 1.6x: met)" in text
    met = "\n".join(bench.ratios(_results(1000, 100.0, 60.0, 20.0, 15.0), [1000]))
    assert "= 5.00x docs/s (target >= 5x: met)" in met and "1.33x docs/s (target >= 1.6x: MISSED)" in met


def test_scaling_lines_flag_superlinear_growth():
    linear = _results(1000, 10.0, 6.0, 2.0, 1.0) + _results(10000, 100.0, 60.0, 21.0, 10.0)
    text = "\n".join(bench.ratios(linear, [1000, 10000]))
    assert "newswash 1 worker: 1,000 -> 10,000 docs (x10): wall time x10.50" in text
    assert "SUPERLINEAR" not in text
    steep = _results(1000, 10.0, 6.0, 2.0, 1.0) + _results(10000, 100.0, 60.0, 30.0, 10.0)
    assert "wall time x15.00 (exponent 1.18, SUPERLINEAR)" in "\n".join(bench.ratios(steep, [1000, 10000]))
