"""Stage: serving. `POST /v1/admin/reload`: load the model source now and hot-swap it in.

Reads the model source through the holder (`serving.http.holder`); writes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from serving.http.deps import HolderDep
from serving.http.schemas import ReloadResponse

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.post("/admin/reload", response_model=ReloadResponse, summary="Reload the models now (hot swap)")
async def reload_models(holder: HolderDep) -> ReloadResponse:
    """Load the current model source beside the served models and swap them in."""
    swapped = await holder.reload(force=True)
    if holder.predictor is None:
        raise HTTPException(status_code=503, detail=f"models could not be loaded: {holder.last_error}")
    return ReloadResponse(
        swapped=swapped, model_version=holder.predictor.info.model_version, error=holder.last_error
    )
