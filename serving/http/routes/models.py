"""Stage: serving. `GET /v1/models`: the model, data and snapshot versions being served.

Reads the served Predictor's info; writes nothing.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from serving.http.deps import PredictorDep
from serving.http.schemas import ModelsResponse

__all__ = ["router"]

router = APIRouter(tags=["models"])


@router.get(
    "/models", response_model=ModelsResponse, summary="Model, data and snapshot versions being served"
)
async def models(predictor: PredictorDep) -> ModelsResponse:
    """What is being served."""
    return ModelsResponse.model_validate(asdict(predictor.info))
