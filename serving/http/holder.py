"""Stage: serving. The served Predictor and its hot swap: load beside, swap by one reference assignment.

Reads the models the settings point at (`serving.online.predictor.Predictor`: a local folder or MLflow
registry aliases) in a worker thread; writes nothing but logs and the swap metrics.

A background task (`ModelHolder.poll`) fingerprints the model source every `poll_seconds` (registry alias
versions, or the local models' metadata); when it changed, and stayed so for one more poll (a folder being
rewritten file by file is not loaded half-way), the new Predictor is loaded *beside* the old one and swapped
in. A request holds the Predictor it started with, so none fails or is dropped during a swap. A failed load
keeps the current models.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

from serving.http.observability import ApiMetrics
from serving.http.settings import ApiSettings, RegistrySource
from serving.online.predictor import BOOKING_TASKS, INTRANSIT_TASK, Predictor, registry_versions
from serving.online.snapshot import SNAPSHOT_DIR

__all__ = ["Loader", "ModelHolder", "load_predictor", "source_version"]

log = logging.getLogger(__name__)

Loader = Callable[[ApiSettings], Predictor]


def load_predictor(settings: ApiSettings) -> Predictor:
    """The Predictor the settings point at (MLflow alias if set, else the local models folder)."""
    source = settings.model_source()
    if isinstance(source, RegistrySource):
        return Predictor.from_registry(
            source.alias,
            tracking_uri=source.tracking_uri,
            snapshot_dir=None if settings.models_dir is None else settings.models_dir / SNAPSHOT_DIR,
            promise_target=settings.promise_target,
        )
    return Predictor.from_dir(source, promise_target=settings.promise_target)


def source_version(settings: ApiSettings) -> str:
    """A cheap fingerprint of what `load_predictor` would load (changes when the champion moves)."""
    source = settings.model_source()
    if isinstance(source, RegistrySource):
        versions = registry_versions(source.alias, tracking_uri=source.tracking_uri)
        return ",".join(f"{t}:{v}" for t, v in sorted(versions.items()))
    digest = hashlib.sha256()
    for name in (*BOOKING_TASKS, INTRANSIT_TASK, SNAPSHOT_DIR):
        for meta in ("metadata.json", "snapshot.json"):
            path = source / name / meta
            if path.exists():
                digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


class ModelHolder:
    """The served Predictor, replaced atomically when the model source changes.

    Args:
        settings: API settings (model source).
        loader: builds a Predictor from the settings (tests pass their own).
        versioner: fingerprints the model source; a change triggers a reload.
        metrics: swap counter and load time gauge.
    """

    def __init__(
        self,
        settings: ApiSettings,
        loader: Loader = load_predictor,
        versioner: Callable[[ApiSettings], str] = source_version,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.loader = loader
        self.versioner = versioner
        self.metrics = metrics
        self.predictor: Predictor | None = None
        self.source_version: str | None = None
        self.last_error: str | None = None
        self._pending: str | None = None
        self._lock = asyncio.Lock()

    async def reload(self, *, force: bool = False) -> bool:
        """Load the models beside the current ones and swap them in if the source changed (or `force`).

        Returns:
            Whether a new Predictor was swapped in. A failed load keeps the current one.
        """
        async with self._lock:
            try:
                version = await asyncio.to_thread(self.versioner, self.settings)
                if not force and self.predictor is not None:
                    if version == self.source_version:
                        return False
                    if version != self._pending:  # reload once the source is stable for one poll
                        self._pending = version
                        return False
                predictor = await asyncio.to_thread(self.loader, self.settings)
            except Exception as exc:  # noqa: BLE001 - keep serving the current models whatever failed
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("model load failed, keeping the current models: %s", self.last_error)
                return False
            self.predictor, self.source_version, self.last_error = predictor, version, None
            if self.metrics is not None:
                self.metrics.model_swaps.inc()
                self.metrics.model_loaded_at.set(time.time())
            log.info("serving models %s", predictor.info.model_version)
            return True

    async def poll(self, seconds: float) -> None:
        """Reload when the source changed and then stayed the same for one more check (`seconds` apart)."""
        while True:
            await asyncio.sleep(seconds)
            await self.reload()
