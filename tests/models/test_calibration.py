"""Calibration: censoring-aware conformal offsets, beta calibration and the data-driven choice."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import (
    BetaCalibrator,
    ConformalOffsets,
    calibrator_from_dict,
    choose_calibrator,
    conformal_offset,
    decidable_offset,
)


def test_an_open_row_past_its_quantile_is_a_known_miss() -> None:
    y = np.array([1.0, 2.0, np.nan, 4.0])
    preds = np.full((4, 1), 3.0)
    age = np.array([9.0, 9.0, 9.0, 9.0])  # every row is old: the third, still open after 9 days, missed
    fitted = ConformalOffsets.fit(y, preds, (0.8,), age=age)
    dropped = ConformalOffsets.fit(y, preds, (0.8,))  # without ages the open row is dropped
    assert fitted.n_censored == 1 and dropped.n_rows == 3
    assert fitted.global_offsets[0] == 6.0 > dropped.global_offsets[0] == 1.0  # the largest bound: 9 - 3
    assert ConformalOffsets.from_dict(fitted.to_dict()) == fitted


def test_with_every_row_old_enough_it_is_split_conformal() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=500)
    assert decidable_offset(scores, np.full(500, np.inf), 0.8) == conformal_offset(scores, 0.8)


def test_recent_rows_count_without_biasing_the_offset_to_the_fast() -> None:
    """Transit times of recent parcels are known only when short; selecting by age keeps the estimate
    right where dropping the open ones makes the quantile too short."""
    rng = np.random.default_rng(0)
    y = rng.exponential(10.0, 20_000)
    age = rng.uniform(0.0, 60.0, y.size)  # half the parcels are younger than 30 days at the cutoff
    known = np.where(y <= age, y, np.inf)
    truth = float(np.quantile(y, 0.8))
    aware = decidable_offset(known, age, 0.8)
    naive = conformal_offset(known[np.isfinite(known)], 0.8)
    assert abs(aware - truth) < 0.05 * truth
    assert naive < 0.85 * truth


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


@pytest.mark.parametrize("method", ["beta", "platt", "isotonic"])
def test_one_row_is_calibrated_to_the_same_bits_as_in_a_batch(method: str) -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.99, 300)
    chosen, _ = choose_calibrator(p, (rng.uniform(size=300) < p).astype(float), methods=(method,))  # type: ignore[arg-type]
    batch = chosen.transform(p)
    assert all(chosen.transform(p[i : i + 1])[0] == batch[i] for i in range(p.size))
