"""Stage: command line, shipment models: `train shipments`, `backtest shipments`, `tune shipments`.

Thin wiring over `pipelines.flows.train_shipments` / `tune_shipments` and `models.shipment_release`. Reads the
validated shipment tables (and a model config file when given); writes the models, the backtest metrics and
the tuning study at the catalog's paths (MLflow through the flow). Heavy libraries are imported inside each
command.

Windows (`models.windows`) are sized from the data and printed with the rule and evidence of each; a model
config file (YAML, the fields of `ShipmentModelsConfig`, e.g. ``windows: {maturity_days: 40}``) or the flags
``--history-days --calibration-days --maturity-days --fold-days --folds`` (``auto`` or a number) override
them, flags last.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.cli.session import console, fail, print_study, print_summary, settings_of, step

if TYPE_CHECKING:
    from models.shipment_release import TaskBacktest
    from models.shipment_tasks import ShipmentModelsConfig
    from pipelines.flows.train_shipments import ShipmentTaskResult

__all__ = ["backtest", "load_model_config", "print_results", "shipment_config", "train", "tune"]

TASKS_HELP = "Comma-separated: eta,delay,intransit,inspection,clearance (default: all)."
WINDOW_HELP = "'auto' (sized from the data, the default) or a number of days."
_WINDOWS = ("history_days", "calibration_days", "maturity_days", "fold_days", "folds")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--model-config", help="YAML file of ShipmentModelsConfig fields (e.g. windows: ...)."),
]
HistoryOpt = Annotated[str | None, typer.Option(help=f"Training window. {WINDOW_HELP}")]
CalibrationOpt = Annotated[str | None, typer.Option(help=f"Calibration window. {WINDOW_HELP}")]
MaturityOpt = Annotated[str | None, typer.Option(help=f"Minimum age of a training row. {WINDOW_HELP}")]
FoldDaysOpt = Annotated[str | None, typer.Option(help=f"Test window of each backtest fold. {WINDOW_HELP}")]
FoldsOpt = Annotated[str | None, typer.Option(help="Backtest folds: 'auto' (as many as fit) or a number.")]


def load_model_config(path: Path) -> ShipmentModelsConfig:
    """A `ShipmentModelsConfig` from a YAML file; a clear error (file, field, rule, fix) otherwise."""
    import yaml
    from pydantic import ValidationError

    from models.shipment_tasks import ShipmentModelsConfig

    if not path.is_file():
        raise ValueError(f"model config {path} not found: pass an existing YAML file to --model-config")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"model config {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"model config {path}: expected a mapping of ShipmentModelsConfig fields")
    try:
        return ShipmentModelsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
        raise ValueError(
            f"model config {path}: {problems}. Fix the field (windows take 'auto' or a number of days)"
        ) from exc


def _window_value(flag: str, value: str) -> str | int:
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text.isdigit():
        return int(text)
    raise ValueError(f"--{flag.replace('_', '-')}: {value!r} is neither 'auto' nor a whole number of days")


def shipment_config(
    model_config: Path | None = None, max_rows: int = 0, **windows: str | None
) -> ShipmentModelsConfig:
    """The shipment models config: defaults, then the model config file, then the flags.

    Args:
        model_config: YAML file of `ShipmentModelsConfig` fields.
        max_rows: most recent training rows per fit (0: keep).
        windows: window flags (`history_days`, ... `folds`), each ``"auto"``, a number or None (keep).

    Raises:
        ValueError: a bad file or flag, with the rule and the fix.
    """
    from models.shipment_tasks import ShipmentModelsConfig

    config = load_model_config(model_config) if model_config else ShipmentModelsConfig()
    fixed = {k: _window_value(k, v) for k, v in windows.items() if v is not None}
    unknown = set(fixed) - set(_WINDOWS)
    if unknown:
        raise ValueError(f"unknown window(s) {sorted(unknown)}; choose from {', '.join(_WINDOWS)}")
    if any(isinstance(v, int) and v < (1 if k != "maturity_days" else 0) for k, v in fixed.items()):
        raise ValueError(f"windows must be positive (maturity may be 0): got {fixed}")
    update: dict[str, object] = {"windows": config.windows.model_copy(update=fixed)}
    if max_rows:
        update["max_train_rows"] = max_rows
    return config.model_copy(update=update)


def _chosen_tasks(tasks: str) -> tuple[str, ...]:
    from models.shipment_tasks import TASKS

    chosen = tuple(t for t in tasks.split(",") if t) or tuple(TASKS)
    unknown = set(chosen) - set(TASKS)
    if unknown:
        raise fail(f"unknown task(s) {', '.join(sorted(unknown))}; choose from {', '.join(TASKS)}")
    return chosen


def _config_or_fail(model_config: Path | None, max_rows: int, **windows: str | None) -> ShipmentModelsConfig:
    try:
        return shipment_config(model_config, max_rows, **windows)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def print_backtest(name: str, bt: TaskBacktest, gate_metric: str) -> None:
    """The windows (value, rule, evidence), test rows per fold and system, and the headline table."""
    import polars as pl
    from rich.table import Table

    from models.evaluation import fold_table

    for title, frame in (
        (f"{name}: windows", bt.windows.table()),
        (f"{name}: test rows per fold and system", fold_table(bt.metrics, gate_metric)),
    ):
        table = Table(title=title, title_justify="left")
        for col in frame.columns:
            table.add_column(col)
        for row in frame.iter_rows():
            table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
        console.print(table)
    summary = bt.summary
    wanted = ("pinball", "mae", "coverage_q80", "coverage_q95", "brier", "auc", "ece", "censored_share")
    print_summary(
        f"{name}: backtest (mean over folds of >= {summary.min_fold_rows} rows)", summary.table, wanted
    )
    gate = summary.table.filter(pl.col("metric") == gate_metric)
    console.print(
        f"  folds and test rows behind each mean: {gate.select('model', 'folds', 'test_rows').rows()}"
    )
    for cutoff, model, n_rows in summary.flagged.select("cutoff", "model", "n_rows").iter_rows():
        console.print(
            f"  [yellow]left out[/]: fold {cutoff:%Y-%m-%d} of {model} has {n_rows:.0f} test rows "
            f"(< {summary.min_fold_rows})"
        )


def print_results(results: dict[str, ShipmentTaskResult]) -> None:
    """Windows, backtest tables, what ships, the promotion decision and the folder of each trained task."""
    for name, res in results.items():
        release = res.release
        print_backtest(name, release.backtest, release.choice.metric)
        console.print(f"  ships: [bold]{release.choice.label}[/] ({release.choice.reason})")
        decision = res.decision
        if decision:
            alias = "champion" if decision.promoted else "challenger"
            console.print(f"  {decision.model} v{decision.version} -> {alias}: {decision.reason}")
        console.print(f"  model directory: {res.model_dir}")


def train(
    ctx: typer.Context,
    tasks: Annotated[str, typer.Option(help=TASKS_HELP)] = "",
    model_config: ConfigOpt = None,
    history_days: HistoryOpt = None,
    calibration_days: CalibrationOpt = None,
    maturity_days: MaturityOpt = None,
    fold_days: FoldDaysOpt = None,
    folds: FoldsOpt = None,
    max_rows: Annotated[int, typer.Option(help="Most recent training rows per fit (0: default).")] = 0,
    track: Annotated[bool, typer.Option(help="Log to MLflow, register, apply the promotion gate.")] = True,
) -> None:
    """Backtest every shipment model next to its baselines, ship the better (gate), fit, log, register."""
    chosen = _chosen_tasks(tasks)
    config = _config_or_fail(
        model_config, max_rows, history_days=history_days, calibration_days=calibration_days,
        maturity_days=maturity_days, fold_days=fold_days, folds=folds,
    )  # fmt: skip
    settings = settings_of(ctx)
    from models.evaluation import BacktestTooSmall
    from pipelines.flows.train_shipments import train_shipment_models

    with step(
        f"flow train-shipment-models ({', '.join(chosen)})", fail_on=(FileNotFoundError, BacktestTooSmall)
    ):
        results = train_shipment_models(config, chosen, settings=settings, track=track)
    print_results(results)


def backtest(
    ctx: typer.Context,
    tasks: Annotated[str, typer.Option(help=TASKS_HELP)] = "",
    model_config: ConfigOpt = None,
    history_days: HistoryOpt = None,
    calibration_days: CalibrationOpt = None,
    maturity_days: MaturityOpt = None,
    fold_days: FoldDaysOpt = None,
    folds: FoldsOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder of the per-fold, per-slice metrics (<outputs>/backtest).")
    ] = None,
) -> None:
    """Print each shipment model against its baselines (and the oracle), windows and rows; no registration."""
    from pipelines.flows._tables import load_oracle, load_tables

    chosen = _chosen_tasks(tasks)
    config = _config_or_fail(
        model_config, 0, history_days=history_days, calibration_days=calibration_days,
        maturity_days=maturity_days, fold_days=fold_days, folds=folds,
    )  # fmt: skip
    catalog = settings_of(ctx).catalog
    try:
        tables = load_tables(catalog.data.validated)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc
    from models.evaluation import BacktestTooSmall
    from models.shipment_release import backtest_systems
    from models.shipment_tasks import prepare_task_frames

    oracle = load_oracle(catalog.data.raw)
    with step("building point-in-time features"):
        frames = prepare_task_frames(tables, config, chosen)
    folder = out or catalog.outputs.backtest
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        with step(f"backtest {name}", fail_on=(BacktestTooSmall,)):
            bt = backtest_systems(frame, config, oracle)
        bt.metrics.write_parquet(catalog.outputs.backtest_metrics(name, folder))
        print_backtest(name, bt, frame.spec.gate_metric)
    console.print(f"per fold and slice: {catalog.outputs.backtest_metrics('<task>', folder)}")


def tune(
    ctx: typer.Context,
    task_name: Annotated[
        str, typer.Option("--task", help="One of eta, delay, intransit, inspection, clearance.")
    ] = "eta",
    trials: Annotated[int, typer.Option(help="Trial budget.")] = 20,
    timeout: Annotated[float, typer.Option(help="Time budget in seconds.")] = 600.0,
    folds: FoldsOpt = None,
    model_config: ConfigOpt = None,
) -> None:
    """Tune one shipment model with Optuna on the backtest's folds; `train shipments` then uses the best."""
    from pipelines.adapters.optuna import StudyConfig, best_params_file
    from pipelines.flows.tune_shipments import tune_shipment_task

    chosen = _chosen_tasks(task_name)
    if len(chosen) != 1:
        raise fail(f"--task takes one task, got {task_name!r}")
    task = chosen[0]
    config = _config_or_fail(model_config, 0, folds=folds)
    settings = settings_of(ctx)
    directory = settings.catalog.outputs.tuning("shipments")
    study_config = StudyConfig(n_trials=trials, timeout_seconds=timeout, directory=directory)
    with step(f"tuning {task}: {trials} trials or {timeout:.0f} s", fail_on=(FileNotFoundError,)):
        study = tune_shipment_task(task, config, study_config, settings=settings)
    print_study(study, best_params_file(f"shipments-{task}", directory), "shipments")
