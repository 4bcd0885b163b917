"""Stage: decisions. The weekly restock plan (periodic-review order-up-to per SKU x warehouse).

Modules, in the order the plan uses them:

* `policy`: `RestockConfig`, ABC classes, volume bands and the service quantile of each series;
* `inputs`: the plan's inputs checked and aligned (`SeriesInputs`, `StockPosition`);
* `costs`: one replenishment mode as an option (`ModeLeads`, `ModeOption`, `FreightRate`);
* `limits`: capacity and budget cuts;
* `plan`: `plan_restock` and its steps (`choose_modes`, `order_lines`);
* `calibration`: the service calibration (`fit_restock_calibration`, `RestockCalibration`), fitted by the
  `calibrate-restock` flow.

Pure throughout: reads and writes nothing.
"""

from serving.decisions.restock.calibration import (
    RestockCalibration,
    fit_quantile_map,
    fit_restock_calibration,
    parse_restock_calibration,
)
from serving.decisions.restock.plan import plan_restock
from serving.decisions.restock.policy import RestockConfig, abc_classes, service_quantile, volume_band

__all__ = [
    "RestockCalibration",
    "RestockConfig",
    "abc_classes",
    "fit_quantile_map",
    "fit_restock_calibration",
    "parse_restock_calibration",
    "plan_restock",
    "service_quantile",
    "volume_band",
]
