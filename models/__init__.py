"""transitcast models package: LightGBM task models, baselines, backtesting, metrics, calibration, tuning.

Modules (none imports prefect, mlflow, fastapi or dvc): `metrics` (one signature, long output),
`backtest` (rolling-origin folds), `baselines`, `encoding` (feature sets, category codes, the LightGBM
matrix), `lgbm` (shared model, save/load), `quantile` (ETA / clearance quantiles + conformal), `classifier`
+ `calibration` (calibrated probabilities), `tuning` (Optuna search spaces and objective factory).
Nothing is imported here, so `import models.metrics` does not load LightGBM.
"""
