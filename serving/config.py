"""Settings of the BentoML service, read from the environment when the service starts.

| variable | default | meaning |
|---|---|---|
| ``CRM_CHURN_MODEL_URI`` | ``models:/churn@champion`` | the churn model (MLflow URI) |
| ``CRM_RECOMMENDER_MODEL_URI`` | ``models:/recommender@champion`` | the recommender (MLflow URI) |
| ``CRM_ONLINE_SNAPSHOT`` | ``out/demo/online`` | the online snapshot folder (features.online) |
| ``MLFLOW_TRACKING_URI`` / ``CRM_STORE_DIR`` | the embedded store | where the registry lives (``Store``) |
| ``CRM_API_TOKEN`` | unset (no auth) | bearer token required on every endpoint except health/readiness |
| ``CRM_RELOAD_POLL_SECONDS`` | ``0`` (off) | check the aliases this often and reload when one moved |
| ``CRM_MODEL_SOURCE`` | ``mlflow`` | ``bento``: load the models imported into a built Bento instead |
| ``CRM_FAST_LANE`` | ``1`` | ``0``: answer /recommend and /churn_score through BentoML's full pipeline |
| ``CRM_PRECOMPUTE_RECOMMENDATIONS`` | ``1`` | ``0``: no per-snapshot top-100 lists (saves n x 800 bytes) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from features.errors import UserError
from features.store import Store

ENV_PREFIX = "CRM_"
# Health and readiness probes stay open: orchestrators call them without credentials.
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
DEFAULT_ONLINE_SNAPSHOT = Path("out/demo/online")


class ServiceSettings(BaseModel):
    """What the service loads and how it protects itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    churn_model_uri: str = "models:/churn@champion"
    recommender_model_uri: str = "models:/recommender@champion"
    value_model_uri: str = "models:/value@champion"  # optional: without it, values are past revenue
    online_snapshot: Path = DEFAULT_ONLINE_SNAPSHOT
    tracking_uri: str | None = None
    api_token: SecretStr | None = None
    reload_poll_seconds: float = Field(0.0, ge=0.0)
    model_source: Literal["mlflow", "bento"] = "mlflow"
    fast_lane: bool = True
    precompute_recommendations: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Build the settings from ``CRM_*`` variables (and :meth:`Store.from_env` for the registry)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in ("churn_model_uri", "recommender_model_uri", "value_model_uri", "api_token", "reload_poll_seconds"):
            key = ENV_PREFIX + name.upper()
            if env.get(key):
                values[name] = env[key]
        if env.get("CRM_FAST_LANE"):
            values["fast_lane"] = env["CRM_FAST_LANE"]
        if env.get("CRM_PRECOMPUTE_RECOMMENDATIONS"):
            values["precompute_recommendations"] = env["CRM_PRECOMPUTE_RECOMMENDATIONS"]
        if env.get("CRM_MODEL_SOURCE"):
            values["model_source"] = env["CRM_MODEL_SOURCE"]
        values["online_snapshot"] = Path(env.get("CRM_ONLINE_SNAPSHOT") or DEFAULT_ONLINE_SNAPSHOT.resolve())
        values["tracking_uri"] = Store.from_env(env).tracking
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ENV_PREFIX + str(first["loc"][0]).upper()
            raise UserError(f"Environment variable {field} is invalid: {first['msg']}.") from None

    def token_bytes(self) -> bytes | None:
        """The expected ``Authorization`` header value, or None when auth is off."""
        if self.api_token is None or not self.api_token.get_secret_value():
            return None
        return b"Bearer " + self.api_token.get_secret_value().encode()


def pin_numeric_threads(environ: dict[str, str] | None = None) -> dict[str, str]:
    """One thread per worker for BLAS/OpenMP/faiss/LightGBM (set before numpy is imported).

    On a small machine a request-sized matrix product gains nothing from threads, and idle BLAS
    threads spinning beside the event loop were a source of latency tail.
    """
    env = os.environ if environ is None else environ
    pinned = {}
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env.setdefault(key, "1")
        pinned[key] = env[key]
    return pinned
