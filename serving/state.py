"""What the service serves from: the champions, the online snapshot and what is precomputed from them.

:func:`load_state` loads both champions (from the MLflow registry, pinned to a version, or from a
built Bento) and the online snapshot into one immutable :class:`LoadedState`. The snapshot does
not change until the next reload, so what every answer needs is computed once here: the churn
score of every customer and the table ``/churn_list`` ranks (:class:`ChurnScores`). Two memos
fill in afterwards, each giving the answers the computed path gives: a customer's churn reasons,
computed the first time an answer shows them, and the default-filter recommendation lists, which
the service precomputes in the background once the state serves (:meth:`LoadedState.precompute`).
The endpoints read the state's methods; a reload builds a new state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.errors import UserError
from features.vocab import LAPSED
from serving import bento
from serving.bundle import ItemLists
from serving.churn_scoring import (
    customer_values,
    filter_segment,
    rank,
    rank_winback,
    retention_stages,
    return_probabilities,
    suggested_action,
)
from serving.config import ServiceSettings
from serving.filters import BusinessFilters
from serving.registry import LoadedModel, load_python_model, resolve_model_uri
from serving.schemas import MAX_K, MAX_PLAN, RetentionPlanRequest

if TYPE_CHECKING:
    from features.online import OnlineSnapshot
    from serving.churn_scoring import ChurnModel
    from serving.live import LiveOverlay
    from serving.reasons import Presenter
    from serving.retrieval import Retrieval
    from serving.uplift_model import UpliftModel
    from serving.value_model import ValueModel

log = logging.getLogger(__name__)

# besides owns_<category>: what a churn segment filters on
SEGMENT_COLUMNS = ("member_tier", "region", "lifecycle_stage")


@dataclass(frozen=True)
class TopLists:
    """The answer of /recommend with the default filters (owned excluded, any category) for every
    customer of the snapshot, ``MAX_K`` long. ``popular`` is the unknown customer's list."""

    row: dict[str, int]  # customer_id -> row
    items: np.ndarray  # (n, MAX_K) int32 item positions, -1 pads
    probability: np.ndarray  # (n, MAX_K) float32: the answers' scores (Recommendations.probability)
    fallback: np.ndarray  # (n,) bool
    popular_items: np.ndarray  # (MAX_K,) int32
    popular_probability: np.ndarray  # (MAX_K,) float32


class ChurnScores:
    """Every snapshot customer's churn score, and the reasons of those an answer has shown.

    ``table`` (what ``/churn_list`` and ``/winback_list`` rank) is computed for every customer when
    the state loads: LightGBM's probability, the band, the value and value at risk, the chance of
    return, the segment columns. The reasons and the action that fits them cost a pass over the
    trees and Python per row, most of the start-up of a million customers, and a request shows a
    few hundred: they are computed for the rows an answer shows, the first time one does, and kept.
    A row's reasons depend on that row alone, so they equal those of a whole-snapshot pass.
    """

    def __init__(self, churn: ChurnModel, frame: pd.DataFrame, table: pd.DataFrame) -> None:
        self.churn, self.frame, self.table = churn, frame, table
        self.row = {str(c): i for i, c in enumerate(frame["customer_id"].tolist())}
        # the answer's columns as arrays once: a column of a million Arrow strings converts slowly
        self._p, self._band = table["churn_probability"].to_numpy(float), table["risk_band"].to_numpy(object)
        self._value, self._at_risk = (
            table["customer_value"].to_numpy(float),
            table["value_at_risk"].to_numpy(float),
        )
        self._stages = frame["lifecycle_stage"].to_numpy(object) if "lifecycle_stage" in frame else None
        self._explained: dict[int, tuple[tuple[str, ...], str]] = {}  # row -> (reasons, action); a memo
        self._lock = threading.Lock()  # one computation of a row's reasons
        churn.expected_logit()  # the trees' path tables now, not at the first request

    def explained(self, rows: Sequence[int]) -> list[tuple[tuple[str, ...], str]]:
        """(reason texts, suggested action) of each table row, computed for those not yet shown."""
        with self._lock:
            missing = sorted({int(r) for r in rows} - self._explained.keys())
            if missing:
                reasons = self.churn.reasons(self.frame.iloc[missing].reset_index(drop=True))
                for r, row in zip(missing, reasons, strict=True):
                    self._explained[r] = (tuple(x["text"] for x in row), suggested_action(row))
            return [self._explained[int(r)] for r in rows]

    def answers(self, customer_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The ``/churn_score`` answer of each customer (``known: false`` for those it lacks)."""
        rows = [self.row.get(c) for c in customer_ids]
        known = [r for r in rows if r is not None]
        explained = dict(zip(known, self.explained(known), strict=True))
        p, band, value, at_risk = self._p, self._band, self._value, self._at_risk
        out = []
        for c, r in zip(customer_ids, rows, strict=True):
            if r is None:
                out.append(unknown_score(c))
                continue
            reasons, action = explained[r]
            out.append(
                {
                    "customer_id": c,
                    "known": True,
                    "churn_probability": round(float(p[r]), 6),
                    "risk_band": str(band[r]),
                    "top_reasons": list(reasons),
                    "customer_value": round(float(value[r]), 2),
                    "value_at_risk": round(float(at_risk[r]), 2),
                    "suggested_action": action,
                    "lifecycle_stage": _str_or_none(self._stages[r]) if self._stages is not None else None,
                }
            )
        return out

    def with_reasons(self, ranked: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``table`` (a ranked selection, by its index) with ``top_reasons`` and
        ``suggested_action``."""
        explained = self.explained(ranked.index.tolist())
        return ranked.assign(
            top_reasons=[reasons for reasons, _ in explained],
            suggested_action=[action for _, action in explained],
        )


class _Precomputed:
    """The state's memo of :class:`TopLists`: empty until :meth:`LoadedState.precompute` fills it."""

    top: TopLists | None = None


@dataclass(frozen=True)
class LoadedState:
    """Everything a request reads; what it answers never changes after it is built (the reasons,
    the precomputed lists and the retrieval's filter cache are memos of the same answers)."""

    churn: ChurnModel
    churn_uri: str
    churn_version: str
    retrieval: Retrieval
    recommender_uri: str
    recommender_version: str
    snapshot: OnlineSnapshot
    scored: ChurnScores  # every snapshot customer's churn score, and the table the lists rank
    loaded_at: float = field(default_factory=time.time)
    _lists: _Precomputed = field(default_factory=_Precomputed, repr=False)
    # how recommended items read (catalogue fields, reasons); None: the retrieval's own
    presenter: Presenter | None = None
    # the value model whose forecast is each customer's value; None: the past-year revenue
    value_model: ValueModel | None = None
    value_uri: str | None = None
    value_version: str | None = None
    # the uplift model of /retention_plan; None: the registry has none
    uplift_model: UpliftModel | None = None
    uplift_uri: str | None = None
    uplift_version: str | None = None

    @property
    def top(self) -> TopLists | None:
        """The default-filter lists of every snapshot customer, once precomputed (None before)."""
        return self._lists.top

    @property
    def churn_table(self) -> pd.DataFrame:
        """Every snapshot customer as the churn lists rank them, with the segment columns."""
        return self.scored.table

    def precompute(self) -> TopLists:
        """Precompute the default-filter lists (:func:`precompute_recommendations`) into the memo
        that :meth:`precomputed` reads; until it is filled each such request is computed, with the
        same answer."""
        if self._lists.top is None:
            self._lists.top = precompute_recommendations(self)
        return self._lists.top

    @property
    def key(self) -> tuple[str | None, ...]:
        """What a poll compares: the model versions (None: an optional model not loaded) and the
        snapshot's as-of."""
        return (
            self.churn_version, self.recommender_version, self.value_version, self.uplift_version,
            self.snapshot.as_of,
        )  # fmt: skip

    # -- recommendations ------------------------------------------------------------------------

    def recommend(
        self,
        customer_ids: list[str],
        k: int,
        exclude_owned: bool,
        categories: list[str] | None,
        live: LiveOverlay | None = None,
        exclude_items: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Top-k per customer, from the snapshot's owned and recent items where it knows them and
        the live overlay's purchases since; never ``exclude_items`` nor items pushed lately."""
        filters = BusinessFilters(exclude_owned=exclude_owned, categories=categories or None)
        rows, recent, owned = self.retrieval.fresh_lists(customer_ids, self.snapshot, live)
        blocked = None
        if live is not None or exclude_items:
            pushed = live.blocked if live is not None else lambda c: []
            blocked = self.retrieval.lists_from_ids(
                [[*(exclude_items or ()), *pushed(c)] for c in customer_ids]
            )
        recs = self.retrieval.recommend_rows(rows, recent, owned, k, filters, blocked)
        presenter = self.presenter or self.retrieval.presenter
        summaries = [
            presenter.summary(c, r, live.get(c) if live is not None else None)
            for c, r in zip(customer_ids, rows.tolist(), strict=True)
        ]
        return presenter.answers(customer_ids, recs, summaries, presenter.now(live))

    def recommend_one(
        self,
        customer_id: str,
        k: int,
        exclude_owned: bool,
        categories: list[str] | None,
        live: LiveOverlay | None = None,
        exclude_items: list[str] | None = None,
    ) -> dict[str, Any]:
        """One customer's answer: the precomputed list where it applies (default filters, nothing
        new in the live overlay), else :meth:`recommend`."""
        if exclude_owned and not categories and not exclude_items:
            if live is None or not live.changes_lists(customer_id):
                answer = self.precomputed(customer_id, k, live)
                if answer is not None:
                    return answer
        return self.recommend([customer_id], k, exclude_owned, categories, live, exclude_items)[0]

    def precomputed(self, customer_id: str, k: int, live: LiveOverlay | None = None) -> dict[str, Any] | None:
        """The default-filter answer from :class:`TopLists`, or None when it must be computed
        (``live``: only its clock, for how long ago the purchases a reason names were)."""
        top = self.top
        if top is None:
            return None
        row = top.row.get(customer_id)
        bundle_row = self.retrieval.customer_row.get(customer_id, -1)
        if row is not None:
            items, probs, fallback = top.items[row, :k], top.probability[row, :k], bool(top.fallback[row])
        elif bundle_row < 0:  # unknown to the snapshot and the model
            items, probs, fallback = top.popular_items[:k], top.popular_probability[:k], True
        else:
            return None
        presenter = self.presenter or self.retrieval.presenter
        summary = presenter.summary(customer_id, bundle_row)
        return presenter.answer(
            customer_id, items.tolist(), probs.tolist(), fallback, summary, presenter.now(live)
        )

    # -- churn ------------------------------------------------------------------------------------

    def churn_scores(self, customer_ids: list[str]) -> list[dict[str, Any]]:
        """The score of each customer (``known: false`` for those the snapshot lacks)."""
        return self.scored.answers(customer_ids)

    def churn_list(
        self,
        min_probability: float,
        tiers: list[str] | None,
        regions: list[str] | None,
        owns: list[str] | None,
        limit: int,
        sort: str,
        stages: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """A segment's customers ranked as :func:`serving.churn_scoring.churn_list` ranks them
        (``stages`` None: every lifecycle stage but lapsed)."""
        segment = filter_segment(self.churn_table, tiers, regions, owns, retention_stages(stages))
        top = self.scored.with_reasons(rank(segment, min_probability, limit, sort))
        return [
            {
                "rank": position,
                "customer_id": str(r.customer_id),
                "churn_probability": round(float(r.churn_probability), 6),
                "risk_band": str(r.risk_band),
                "customer_value": round(float(r.customer_value), 2),
                "value_at_risk": round(float(r.value_at_risk), 2),
                "top_reasons": list(r.top_reasons),
                "suggested_action": str(r.suggested_action),
                "member_tier": _str_or_none(r.member_tier),
                "region": _str_or_none(r.region),
                "lifecycle_stage": _str_or_none(r.lifecycle_stage),
            }
            for position, r in enumerate(top.itertuples(index=False), start=1)
        ]

    def winback_list(
        self,
        min_probability: float,
        tiers: list[str] | None,
        regions: list[str] | None,
        owns: list[str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The lapsed customers of a segment ranked as :func:`serving.churn_scoring.winback_list`
        ranks them: return probability x forecast value."""
        if "return_probability" not in self.churn_table:
            raise UserError(
                "The win-back list needs a value model, and the registry has none: train and promote"
                " one (`crm train value --register`, `crm promote value`), then reload."
            )
        segment = filter_segment(self.churn_table, tiers, regions, owns, [LAPSED])
        top = self.scored.with_reasons(rank_winback(segment, min_probability, limit))
        return [
            {
                "rank": position,
                "customer_id": str(r.customer_id),
                "return_probability": round(float(r.return_probability), 6),
                "customer_value": round(float(r.customer_value), 2),
                "winback_value": round(float(r.winback_value), 2),
                "top_reasons": list(r.top_reasons),
                "suggested_action": str(r.suggested_action),
                "member_tier": _str_or_none(r.member_tier),
                "region": _str_or_none(r.region),
            }
            for position, r in enumerate(top.itertuples(index=False), start=1)
        ]

    # -- retention plans -------------------------------------------------------------------------

    def retention_plan(self, request: RetentionPlanRequest) -> dict[str, Any]:
        """The /retention_plan answer: the snapshot's customers by expected value saved, as many as
        the budget pays for, with a random control group (:func:`serving.plan.retention_plan`)."""
        from serving.plan import retention_plan

        if self.uplift_model is None:
            raise UserError("No uplift model is loaded.")
        start = pd.Timestamp(self.snapshot.as_of).to_pydatetime()
        plan = retention_plan(
            self.snapshot.snapshot, self.uplift_model, self.value_model, request.offer, request.budget,
            request.control_share, request.cost, request.seed, request.campaign_id, start, request.channel,
        )  # fmt: skip
        if len(plan.customers) > MAX_PLAN:
            raise UserError(
                f"The plan has {len(plan.customers):,} customers, more than one answer carries"
                f" ({MAX_PLAN:,}): lower the budget, or write it with `crm retention-plan`."
            )
        c = plan.customers
        first = c.iloc[0] if len(c) else None
        return {
            "campaign_id": str(first.campaign_id) if first is not None else (request.campaign_id or ""),
            "offer": plan.offer,
            "ts": start.isoformat(),
            "channel": request.channel,
            "cost": round(plan.cost, 2),
            "budget": round(plan.budget, 2),
            "treated": plan.treated,
            "control": plan.control,
            "spend": round(plan.spend, 2),
            "expected_value_saved": round(plan.expected_value_saved, 2),
            "customers": [
                {
                    "rank": int(r.rank),
                    "customer_id": str(r.customer_id),
                    "arm": str(r.arm),
                    "cost": round(float(r.cost), 2),
                    "uplift": round(float(r.uplift), 6),
                    "risk": round(float(r.risk), 6),
                    "customer_value": round(float(r.customer_value), 2),
                    "expected_value_saved": round(float(r.expected_value_saved), 2),
                }
                for r in c.itertuples(index=False)
            ],
            "uplift_version": self.uplift_version,
            "value_version": self.value_version,
            "snapshot_as_of": self.snapshot.as_of,
        }


def unknown_score(customer_id: str) -> dict[str, Any]:
    """The /churn_score answer for a customer the snapshot does not know."""
    return {
        "customer_id": customer_id,
        "known": False,
        "churn_probability": None,
        "risk_band": None,
        "top_reasons": [],
        "customer_value": None,
        "value_at_risk": None,
        "suggested_action": None,
        "lifecycle_stage": None,
    }


def _str_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


# ---------------------------------------------------------------------------------------------
# loading and precomputing


def score_table(
    churn: ChurnModel, snapshot: pd.DataFrame, value_model: ValueModel | None = None
) -> ChurnScores:
    """Every snapshot customer scored once: the table ``/churn_list`` ranks, what
    :func:`serving.churn_scoring.churn_list` computes for a segment (LightGBM's own probability,
    its band and value at risk), the chance of return with a value model, and the segment columns;
    the reasons follow per customer when an answer shows them (:class:`ChurnScores`)."""
    frame = snapshot.reset_index(drop=True)
    columns = [c for c in SEGMENT_COLUMNS if c in frame] + [c for c in frame.columns if c.startswith("owns_")]
    listed = churn.score(frame, with_reasons=False, value=customer_values(value_model, frame))
    if value_model is not None and len(frame):  # the win-back list's chance of return, for everyone
        listed["return_probability"] = return_probabilities(value_model, frame)
    return ChurnScores(churn, frame, pd.concat([listed, frame[columns]], axis=1))


def score_snapshot(
    churn: ChurnModel, snapshot: pd.DataFrame, value_model: ValueModel | None = None
) -> dict[str, dict[str, Any]]:
    """The ``/churn_score`` answers of every row of ``snapshot``, reasons included (a few
    customers: the live refresh's)."""
    scored = score_table(churn, snapshot, value_model)
    ids = list(scored.row)
    return dict(zip(ids, scored.answers(ids), strict=True))


def precompute_recommendations(state: LoadedState, chunk: int = 4096) -> TopLists:
    """Top-``MAX_K`` lists with the default filters for every snapshot customer, in chunks, through
    the same lists and query as :meth:`LoadedState.recommend`."""
    retrieval, snapshot = state.retrieval, state.snapshot
    ids = [str(c) for c in snapshot.snapshot.index]
    items = np.full((len(ids), MAX_K), -1, dtype=np.int32)
    probability = np.zeros((len(ids), MAX_K), dtype=np.float32)
    fallback = np.zeros(len(ids), dtype=bool)
    for start in range(0, len(ids), chunk):
        block = slice(start, start + chunk)
        recs = retrieval.recommend_rows(*retrieval.fresh_lists(ids[block], snapshot), MAX_K)
        items[block], probability[block], fallback[block] = recs.items, recs.probability, recs.fallback
    nobody = retrieval.recommend_rows(np.array([-1]), ItemLists.empty(1), ItemLists.empty(1), MAX_K)
    # the presenter's lookup has the same rows (the snapshot's customers, in order): shared
    presenter = state.presenter
    shared = presenter is not None and len(presenter.row) == len(ids)
    return TopLists(
        row=presenter.row if shared else {c: i for i, c in enumerate(ids)},
        items=items,
        probability=probability,
        fallback=fallback,
        popular_items=nobody.items[0].astype(np.int32),
        popular_probability=nobody.probability[0],
    )


def present(retrieval: Retrieval, snapshot: OnlineSnapshot, row: dict[str, int] | None = None) -> Presenter:
    """How the recommended items of ``retrieval`` read with the snapshot's catalogue and purchases
    (``row``: the snapshot's customer -> row lookup, shared rather than built again)."""
    from serving.reasons import Presenter

    return Presenter.from_snapshot(retrieval.bundle, snapshot, row)


def _load_models(settings: ServiceSettings) -> tuple[LoadedModel, LoadedModel, Path]:
    """The churn model, the recommender, and the online snapshot's folder."""
    if settings.model_source == "bento":
        return bento.load_model(bento.CHURN), bento.load_model(bento.RECOMMENDER), bento.snapshot_path()
    uris = (settings.churn_model_uri, settings.recommender_model_uri)
    refs = [resolve_model_uri(uri, settings.tracking_uri) for uri in uris]  # both pinned before loading
    churn, recommender = (LoadedModel(load_python_model(r.location), r.uri, r.version) for r in refs)
    return churn, recommender, settings.online_snapshot


def _load_value_model(settings: ServiceSettings) -> LoadedModel | None:
    """The value champion, or None when the registry has none (the lists then value customers by
    their past-year revenue, and /info says so). A Bento carries no value model."""
    from serving.value_model import load_value_model

    if settings.model_source == "bento":
        return None
    value = load_value_model(settings.value_model_uri, settings.tracking_uri)
    if value is None:
        log.warning("No value model at %s: values are the past-year revenue.", settings.value_model_uri)
        return None
    value.model.num_threads = 1
    return value


def _load_uplift_model(settings: ServiceSettings) -> LoadedModel | None:
    """The uplift champion, or None when the registry has none (/retention_plan then answers 503).
    A Bento carries no uplift model."""
    from serving.plan import UPLIFT_MARK
    from serving.registry import load_registered

    if settings.model_source == "bento":
        return None
    uplift = load_registered(
        settings.uplift_model_uri, settings.tracking_uri, UPLIFT_MARK, "an uplift model", optional=True
    )
    if uplift is None:
        log.info("No uplift model at %s: /retention_plan is off.", settings.uplift_model_uri)
    else:
        uplift.model.num_threads = 1
    return uplift


def load_state(settings: ServiceSettings) -> LoadedState:
    """Load both champions and the online snapshot; raise on any failure (nothing is swapped).
    The default-filter lists are not precomputed yet: :meth:`LoadedState.precompute` does it."""
    from features.online import load_online_snapshot

    churn, recommender, snapshot_path = _load_models(settings)
    retrieval = getattr(recommender.model, "retrieval", recommender.model)
    if not hasattr(churn.model, "score") or not hasattr(retrieval, "recommend_rows"):
        raise UserError(f"{churn.uri} / {recommender.uri} are not the CRM churn and recommender models.")
    churn.model.num_threads = 1  # one LightGBM thread per worker: requests are small
    value = _load_value_model(settings)
    uplift = _load_uplift_model(settings)
    snapshot = load_online_snapshot(snapshot_path)
    scored = score_table(churn.model, snapshot.snapshot, value and value.model)
    state = LoadedState(
        churn=churn.model,
        churn_uri=churn.uri,
        churn_version=churn.version,
        retrieval=retrieval,
        recommender_uri=recommender.uri,
        recommender_version=recommender.version,
        snapshot=snapshot,
        scored=scored,
        value_model=value and value.model,
        value_uri=value and value.uri,
        value_version=value and value.version,
        uplift_model=uplift and uplift.model,
        uplift_uri=uplift and uplift.uri,
        uplift_version=uplift and uplift.version,
    )
    return replace(state, presenter=present(retrieval, snapshot, scored.row))
