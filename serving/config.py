"""Settings of the BentoML service, read from the environment when the service starts.

| variable | default | meaning |
|---|---|---|
| ``CRM_CHURN_MODEL_URI`` | ``models:/churn@champion`` | the churn model (MLflow URI) |
| ``CRM_RECOMMENDER_MODEL_URI`` | ``models:/recommender@champion`` | the recommender (MLflow URI) |
| ``CRM_VALUE_MODEL_URI`` | ``models:/value@champion`` | optional; without it values are past revenue |
| ``CRM_UPLIFT_MODEL_URI`` | ``models:/uplift@champion`` | optional; without it no /retention_plan |
| ``CRM_ONLINE_SNAPSHOT`` | ``out/demo/online`` | the online snapshot folder (features.online) |
| ``MLFLOW_TRACKING_URI`` / ``CRM_STORE_DIR`` | the embedded store | where the registry lives (``Store``) |
| ``CRM_API_TOKEN`` | unset (no auth) | bearer token needed on all endpoints but the probes (empty: refused) |
| ``CRM_OPEN_OPERATIONS`` | ``0`` | ``1``: /info and /reload open when there is no token (else off: 403) |
| ``CRM_MAX_BODY_BYTES`` | ``4194304`` (4 MiB) | a larger request body is refused (413) before parsing |
| ``CRM_MAX_HEADER_BYTES`` | ``16384`` | larger request lines and headers are refused with 431 |
| ``CRM_HEADER_TIMEOUT_SECONDS`` | ``10`` | a connection whose request headers take longer is closed (408) |
| ``CRM_RELOAD_POLL_SECONDS`` | ``0`` (off) | check the aliases this often and reload when one moved |
| ``CRM_RELOAD_TIMEOUT_SECONDS`` | ``20`` | how long ``/reload`` waits for the load before answering 503 |
| ``CRM_SERVED_RECORD`` | ``served.json`` in the store folder | the versions last served (the fallback) |
| ``CRM_MODEL_SOURCE`` | ``bento`` in a built Bento, else ``mlflow`` | an override of where models come from |
| ``CRM_FAST_LANE`` | ``1`` | ``0``: answer /recommend and /churn_score through BentoML's full pipeline |
| ``CRM_PRECOMPUTE_RECOMMENDATIONS`` | ``1`` | ``0``: no per-snapshot top-100 lists (saves n x 800 bytes) |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from features.errors import UserError
from features.store import Store

ENV_PREFIX = "CRM_"
# Health and readiness probes stay open: orchestrators call them without credentials.
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
# What an operator calls (each /reload is a full model load): behind the token, or off without one
# unless CRM_OPEN_OPERATIONS opens them.
OPERATION_PATHS = frozenset({"/info", "/reload"})
# endpoints that take no parameters and answer GET as they answer POST
GET_AND_POST_PATHS = frozenset({"/info"})
# The largest valid request (10,000 ids of 200 characters) is about 2 MB.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_ONLINE_SNAPSHOT = Path("out/demo/online")


class ServiceSettings(BaseModel):
    """What the service loads and how it protects itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    churn_model_uri: str = "models:/churn@champion"
    recommender_model_uri: str = "models:/recommender@champion"
    value_model_uri: str = "models:/value@champion"  # optional: without it, values are past revenue
    uplift_model_uri: str = "models:/uplift@champion"  # optional: without it, no /retention_plan
    online_snapshot: Path = DEFAULT_ONLINE_SNAPSHOT
    tracking_uri: str | None = None
    api_token: SecretStr | None = None
    open_operations: bool = False
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    header_timeout_seconds: float = Field(10.0, gt=0.0)
    reload_poll_seconds: float = Field(0.0, ge=0.0)
    reload_timeout_seconds: float = Field(20.0, gt=0.0)
    served_record: Path | None = None  # None: no record, so no fallback to the last served versions
    model_source: Literal["mlflow", "bento"] = "mlflow"
    fast_lane: bool = True
    precompute_recommendations: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, in_bento: bool = False) -> ServiceSettings:
        """Build the settings from ``CRM_*`` variables (and :meth:`Store.from_env` for the registry);
        ``in_bento``: the service runs from a built Bento, so its models are the Bento's unless
        ``CRM_MODEL_SOURCE`` says otherwise."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"model_source": "bento" if in_bento else "mlflow"}
        for name in (
            "churn_model_uri", "recommender_model_uri", "value_model_uri", "uplift_model_uri", "api_token",
            "reload_poll_seconds",
            "reload_timeout_seconds", "served_record",
        ):  # fmt: skip
            key = ENV_PREFIX + name.upper()
            if env.get(key):
                values[name] = env[key]
        if ENV_PREFIX + "API_TOKEN" in env and not env[ENV_PREFIX + "API_TOKEN"].strip():
            raise UserError(
                "Environment variable CRM_API_TOKEN is set but empty: set it to the token clients must"
                " send, or unset it to serve without one."
            )
        for name in ("open_operations", "max_body_bytes", "max_header_bytes", "header_timeout_seconds"):
            if env.get(ENV_PREFIX + name.upper()):
                values[name] = env[ENV_PREFIX + name.upper()]
        if env.get("CRM_FAST_LANE"):
            values["fast_lane"] = env["CRM_FAST_LANE"]
        if env.get("CRM_PRECOMPUTE_RECOMMENDATIONS"):
            values["precompute_recommendations"] = env["CRM_PRECOMPUTE_RECOMMENDATIONS"]
        if env.get("CRM_MODEL_SOURCE"):
            values["model_source"] = env["CRM_MODEL_SOURCE"]
        values["online_snapshot"] = Path(env.get("CRM_ONLINE_SNAPSHOT") or DEFAULT_ONLINE_SNAPSHOT.resolve())
        values["tracking_uri"] = Store.from_env(env).tracking
        values.setdefault("served_record", Store.from_env(env).root / "served.json")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ENV_PREFIX + str(first["loc"][0]).upper()
            raise UserError(f"Environment variable {field} is invalid: {first['msg']}.") from None

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not re.fullmatch(r"[\x21-\x7e]+", token.get_secret_value()):
            raise ValueError("the token must be printable ASCII characters without spaces")
        return token

    def token_bytes(self) -> bytes | None:
        """The bearer token clients must send (the credentials after ``Bearer``), or None: no auth."""
        return None if self.api_token is None else self.api_token.get_secret_value().encode()


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
