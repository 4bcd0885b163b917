"""Benchmark: KCS customs fraud ranking (`is_fraud`), precision@5% / @10% on the publisher's test split.

Data: `shared/data/customs_kcs_synthetic` (54,000 synthetic declarations, CTGAN) through
`features.sources.adapt_kcs` -> `customs_declarations`. The publisher's time split is kept (`attr_split`):
train 2020 (37,385), valid 2021-01..03 (8,134; early stopping only), test 2021-04..06 (8,481; reported).
`fraud_severity` is never read.

Systems, side by side, all scored on the same test rows:

- `lightgbm-plain`: LightGBM on the raw columns: ids and codes as native categorical features (office,
  importer, declarant, seller, courier, HS6, origin and departure countries, process/import type, use,
  payment, tax type, origin indicator, transport mode; integer codes learnt on the train rows) plus tariff
  rate, net mass and declared value. LightGBM defaults with learning rate 0.1, early stopping on valid AUC
  (patience 100), at most `PLAIN_ROUNDS` rounds.
- `transitcast`: `features.customs_history` (point-in-time label history per importer, declarant, seller,
  office, HS6, HS4, importer x HS6, declarant x office, HS6 x origin / departure / tax type / mass and value
  bands, exact repeats of the declared goods line; activity counts and recency; value, value per kg and
  tariff rate against the as-of HS6 median) with label lag L = 7 days, plus the raw numeric columns and the
  low-cardinality codes (the high-cardinality ids enter only through their history).
- `transitcast L=0`: the same with labels known the day after the declaration.
- `transitcast no-exact-keys`: ablation without the exact-repeat keys (goods line, HS6 x value, HS6 x mass).
- `transitcast frozen labels`: the `transitcast` model, but no test label is ever known (the history's labels
  stop at 2021-03-31): what is left without online label updates.
- `transitcast entity-keys-only` (with `--extra`): only the importer, declarant, seller, office, HS6, HS4,
  importer x HS6 and declarant x office keys plus the deviations (the classic risk-profile features).
- `rule: importer rate` and `rule: goods-line rate`: one as-of smoothed fraud rate (L = 7) as the score.

Every history feature of a row declared at `t` uses only declarations lodged strictly before `t`, and their
labels only when `declared_at + L < t`; test rows see train, valid and earlier test rows on those terms.

Run alone: `.venv/bin/python bench/customs_kcs.py [--extra]` (deterministic: seed 0,
2 threads; ~75 s on 2 busy cores without `--extra`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from _results import ROOT, record, write_table

from features.customs_history import (
    DEFAULT_KEYS,
    KCS_KEYS,
    CustomsHistoryConfig,
    HistoryKey,
    build_customs_history,
    feature_names,
)
from features.sources import adapt_kcs, read_source
from models.encoding import CategoryEncoder
from models.metrics import auc, precision_at_k

__all__ = ["main"]

BENCHMARK = "customs_kcs"
COMMAND = ".venv/bin/python bench/customs_kcs.py"
DATA = ROOT.parent / "shared" / "data" / "customs_kcs_synthetic"
TARGET = "is_fraud"
LABEL_LAG_DAYS = 7.0
PLAIN_ROUNDS = 3000
HISTORY_ROUNDS = 2000
PATIENCE = 100
THREADS = 2

ID_CATEGORICALS = ("importer_id", "declarant_id", "seller_id", "hs_code")
LOW_CATEGORICALS = (
    "office_id",
    "courier_id",
    "origin_country",
    "attr_country_of_departure",
    "attr_process_type",
    "attr_import_type",
    "attr_import_use",
    "attr_payment_type",
    "attr_tax_type",
    "attr_origin_indicator",
    "attr_transport_mode",
)
RAW_NUMERIC = ("tax_rate_pct", "net_mass_kg", "declared_value_usd")
EXACT_KEYS = frozenset({"goods", "hs6_value", "hs6_mass"})
ENTITY_KEYS = frozenset(
    {"importer", "declarant", "seller", "office", "hs6", "hs4", "importer_hs6", "declarant_office"}
)

BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": THREADS,
    "verbosity": -1,
}
PLAIN_PARAMS = {**BASE_PARAMS, "learning_rate": 0.1}
HISTORY_PARAMS = {**BASE_PARAMS, "learning_rate": 0.05}


@dataclass(frozen=True)
class Fitted:
    """A trained booster with what scoring needs."""

    booster: Any
    encoder: CategoryEncoder
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    fit_seconds: float

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        coded = self.encoder.transform(frame.select(self.columns))
        return coded.select(pl.col(c).cast(pl.Float64) for c in self.columns).to_numpy()

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        return self.booster.predict(self.matrix(frame), num_iteration=self.booster.best_iteration)

    def top_gain(self, n: int = 15) -> list[tuple[str, float]]:
        gain = self.booster.feature_importance("gain", iteration=self.booster.best_iteration)
        return sorted(zip(self.columns, gain.tolist(), strict=True), key=lambda x: -x[1])[:n]


def fit_lightgbm(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    params: dict[str, Any],
    rounds: int,
) -> Fitted:
    """Fit a binary LightGBM on `train`, early-stopped on `valid` AUC; categories as train-learnt codes."""
    import lightgbm as lgb

    t0 = time.perf_counter()
    encoder = CategoryEncoder().fit(train, list(categorical))
    shell = Fitted(None, encoder, tuple(numeric), tuple(categorical), 0.0)
    y_train = train.get_column(TARGET).cast(pl.Float64).to_numpy()
    y_valid = valid.get_column(TARGET).cast(pl.Float64).to_numpy()
    dtrain = lgb.Dataset(
        shell.matrix(train), y_train, feature_name=list(shell.columns), categorical_feature=list(categorical)
    )
    dvalid = lgb.Dataset(shell.matrix(valid), y_valid, reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        rounds,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(PATIENCE, first_metric_only=True, verbose=False)],
    )
    return Fitted(booster, encoder, shell.numeric, shell.categorical, time.perf_counter() - t0)


def score_metrics(test: pl.DataFrame, scores: dict[str, np.ndarray]) -> pl.DataFrame:
    """Long frame [model, metric, value] of precision@5%, precision@10% and AUC on the test rows."""
    frame = test.select(pl.col(TARGET).cast(pl.Int8)).with_columns(
        pl.Series(name, values, dtype=pl.Float64) for name, values in scores.items()
    )
    models = list(scores)
    parts = [
        precision_at_k(frame, models, TARGET, cutoff_col=None, k=0.05),
        precision_at_k(frame, models, TARGET, cutoff_col=None, k=0.10),
        auc(frame, models, TARGET, cutoff_col=None),
    ]
    return pl.concat(parts)


def history_config(lag: float, *, exact: bool = True, entity_only: bool = False) -> CustomsHistoryConfig:
    """The KCS history features with label lag `lag` days.

    Args:
        lag: label lag L in days.
        exact: keep the exact-repeat keys (goods line, HS6 x value, HS6 x mass).
        entity_only: keep only the importer/declarant/seller/office/HS6/HS4/importer x HS6/declarant x
            office keys (and the deviations).
    """
    keys: tuple[HistoryKey, ...] = DEFAULT_KEYS + KCS_KEYS
    if not exact:
        keys = tuple(k for k in keys if k.name not in EXACT_KEYS)
    if entity_only:
        keys = tuple(k for k in keys if k.name in ENTITY_KEYS)
    return CustomsHistoryConfig(label_lag_days=lag, keys=keys)


def split(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The publisher's train, valid and test rows."""
    parts = [frame.filter(pl.col("attr_split") == s) for s in ("train", "valid", "test")]
    return parts[0], parts[1], parts[2]


def run_history_model(
    declarations: pl.DataFrame, config: CustomsHistoryConfig
) -> tuple[Fitted, np.ndarray, float]:
    """Build the history features, fit on train (early stop on valid), score test; returns build seconds."""
    t0 = time.perf_counter()
    features = build_customs_history(declarations, config=config)
    build_s = time.perf_counter() - t0
    train, valid, test = split(features)
    numeric = (*RAW_NUMERIC, *feature_names(config))
    fitted = fit_lightgbm(train, valid, numeric, LOW_CATEGORICALS, HISTORY_PARAMS, HISTORY_ROUNDS)
    return fitted, fitted.predict(test), build_s


def main(extra: bool = False) -> None:
    """Run every system, record the figures and rebuild docs/benchmarks.md.

    Args:
        extra: also run the slower entity-keys-only ablation (~1,000+ rounds; adds 30-100 s).
    """
    command = f"{COMMAND} --extra" if extra else COMMAND
    t_start = time.perf_counter()
    declarations = adapt_kcs(read_source("kcs", Path(DATA))).tables["customs_declarations"]
    declarations = declarations.drop("fraud_severity")  # label of the label: never a feature
    train, valid, test = split(declarations)
    dataset = f"KCS synthetic, test 2021-04..06 ({test.height:,} declarations)"
    scores: dict[str, np.ndarray] = {}
    fits: dict[str, Fitted] = {}
    builds: dict[str, float] = {}

    plain = fit_lightgbm(
        train, valid, RAW_NUMERIC, (*ID_CATEGORICALS, *LOW_CATEGORICALS), PLAIN_PARAMS, PLAIN_ROUNDS
    )
    scores["lightgbm-plain"], fits["lightgbm-plain"] = plain.predict(test), plain

    runs = {
        "transitcast": history_config(LABEL_LAG_DAYS),
        "transitcast L=0": history_config(0.0),
        "transitcast no-exact-keys": history_config(LABEL_LAG_DAYS, exact=False),
    }
    if extra:
        runs["transitcast entity-keys-only"] = history_config(LABEL_LAG_DAYS, entity_only=True)
    for system, config in runs.items():
        fitted, scores[system], builds[system] = run_history_model(declarations, config)
        fits[system] = fitted

    # Frozen labels: the test declarations stay in the history (they are lodged), but none of their labels
    # is ever known. Train and valid rows see no test label anyway, so the `transitcast` model is reused.
    frozen = declarations.with_columns(is_inspected=pl.col("attr_split") != "test")
    test_frozen = build_customs_history(test, frozen, config=runs["transitcast"])
    scores["transitcast frozen labels"] = fits["transitcast"].predict(test_frozen)

    rules = (
        ("rule: importer rate", HistoryKey(name="importer", by=("importer_id",), activity=False)),
        ("rule: goods-line rate", HistoryKey(name="goods", by=("goods_key",), m=1.0, activity=False)),
    )
    for system, key in rules:
        config = CustomsHistoryConfig(label_lag_days=LABEL_LAG_DAYS, keys=(key,), deviations=())
        rate = build_customs_history(test, declarations, config=config).get_column(key.label_names[0])
        scores[system] = rate.fill_null(rate.mean()).to_numpy()

    metrics = score_metrics(test, scores)
    for system, metric, value in metrics.select("model", "metric", "value").iter_rows():
        record(BENCHMARK, dataset, system, metric, value, "fraction", command)
    for system, fitted in fits.items():
        record(BENCHMARK, dataset, system, "fit_seconds", fitted.fit_seconds, "s", command)
        record(BENCHMARK, dataset, system, "best_iteration", fitted.booster.best_iteration, "rounds", command)
    for system, seconds in builds.items():
        record(BENCHMARK, dataset, system, "feature_build_seconds", seconds, "s", command)
    record(BENCHMARK, dataset, "all systems", "wall_seconds", time.perf_counter() - t_start, "s", command)
    write_table()

    print(f"\nlabel lag L = {LABEL_LAG_DAYS:g} days; gain importance, top 15 (transitcast):")
    for name, gain in fits["transitcast"].top_gain(15):
        print(f"  {name:<48} {gain:>12,.0f}")
    print("\ngain importance, top 10 (transitcast no-exact-keys):")
    for name, gain in fits["transitcast no-exact-keys"].top_gain(10):
        print(f"  {name:<48} {gain:>12,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--extra", action="store_true", help="also run the entity-keys-only ablation")
    main(parser.parse_args().extra)
