"""Calibration: censoring-aware conformal offsets, beta calibration and the data-driven choice."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import (
    BetaCalibrator,
    ConformalOffsets,
    calibrator_from_dict,
    censored_scores,
    choose_calibrator,
    conformal_offset,
)


def test_an_open_row_past_its_quantile_is_a_known_miss_and_one_before_it_is_left_out() -> None:
    y = np.array([1.0, 2.0, np.nan, np.nan])
    preds = np.array([[3.0], [3.0], [3.0], [3.0]])
    lower = np.array([np.nan, np.nan, 5.0, 1.0])  # the third already took 5 days: a miss; the fourth: unknown
    scores, bounds = censored_scores(y, preds, lower)
    assert scores[:, 0].tolist()[:3] == [-2.0, -1.0, np.inf] and np.isnan(scores[3, 0])
    assert bounds[2, 0] == 2.0
    fitted = ConformalOffsets.fit(y, preds, (0.8,), lower=lower)
    dropped = ConformalOffsets.fit(y[:2], preds[:2], (0.8,))
    assert fitted.n_censored == 2 and fitted.global_offsets[0] == 2.0 > dropped.global_offsets[0] == -1.0
    assert ConformalOffsets.from_dict(fitted.to_dict()) == fitted


def test_offset_falls_back_on_the_bounds_when_most_rows_are_censored_misses() -> None:
    scores = np.array([np.inf, np.inf, np.inf, -1.0])
    bounds = np.array([2.0, 4.0, 3.0, np.nan])
    assert conformal_offset(scores, 0.8, bounds) == 4.0


def test_beta_calibration_fixes_a_distorted_probability_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.02, 0.6, 6_000)
    y = (rng.uniform(size=truth.size) < truth).astype(float)
    raw = truth**0.5  # over-confident towards 1
    beta = BetaCalibrator.fit(raw, y)
    assert np.abs(beta.transform(raw) - truth).mean() < 0.03
    assert calibrator_from_dict(beta.to_dict()) == beta
    chosen, scores = choose_calibrator(raw, y)
    assert set(scores) == {"isotonic", "platt", "beta"}
    assert chosen.method == min(scores, key=lambda m: scores[m])


def test_too_few_rows_to_compare_use_platt() -> None:
    chosen, scores = choose_calibrator(np.array([0.1, 0.9, 0.2, 0.8]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert chosen.method == "platt" and scores == {}


@pytest.mark.parametrize("method", ["beta", "platt", "isotonic"])
def test_every_calibrator_keeps_probabilities_inside_zero_one(method: str) -> None:
    p = np.linspace(0.0, 1.0, 101)
    y = (p > 0.5).astype(float)
    chosen, _ = choose_calibrator(p, y, methods=(method,))  # type: ignore[arg-type]
    out = chosen.transform(p)
    assert ((out > 0) & (out < 1)).all()
