"""The churn model as served: calibrated probabilities, risk bands, reasons, actions, churn lists.

:class:`ChurnModel` is the MLflow pyfunc that training logs and serving loads
(``models:/churn@champion``). It holds the LightGBM booster (as its text model), the feature list,
the categorical levels and the Platt calibration, so a serving process needs no training code.
Reasons come from feature contributions read off LightGBM's own trees (path attribution, see
:meth:`ChurnModel.contributions`), phrased with the feature declarations of
:mod:`features.families`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.actions import pick_reasons, reason_phrase, suggest_action
from features.errors import UserError
from features.families import all_features
from features.vocab import CHURN_SORTS, LAPSED, LIFECYCLE_STAGES
from serving.encoding import feature_matrix

if TYPE_CHECKING:
    from serving.value_model import ValueModel

RISK_BANDS = ((0.75, "high"), (0.5, "medium"), (0.0, "low"))
# A reason is picked from this many largest contributions: those a marketer would misread are
# left out (features.actions.READINGS), so the shown ones may come from further down.
REASON_CANDIDATES = 30


def risk_band(probability: np.ndarray) -> np.ndarray:
    bands = np.full(len(probability), RISK_BANDS[-1][1], dtype=object)
    for threshold, name in reversed(RISK_BANDS[:-1]):
        bands[probability >= threshold] = name
    return bands


def suggested_action(reasons: list[dict]) -> str:
    """The action that fits the first reason whose value meets an action's condition."""
    return suggest_action([(r["feature"], r["value"]) for r in reasons])


@dataclass
class Calibration:
    """Platt scaling on the log-odds: p = 1 / (1 + exp(-(a * logit + b))). Strictly monotone, so
    it keeps the ranking (and the ROC-AUC) of the raw model."""

    a: float = 1.0
    b: float = 0.0

    def apply(self, raw_logit: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * raw_logit + self.b)))


class ChurnModel(mlflow.pyfunc.PythonModel):
    """LightGBM churn classifier with calibration and reasons. ``predict`` returns probabilities."""

    def __init__(
        self,
        booster_text: str,
        features: list[str],
        categorical_levels: dict[str, list[str]],
        calibration: Calibration,
        num_threads: int = 2,
    ) -> None:
        self.booster_text = booster_text
        self.features = list(features)
        self.categorical_levels = {k: list(v) for k, v in categorical_levels.items()}
        self.calibration = calibration
        self.num_threads = num_threads
        self._booster = None
        self._paths = None

    # -- MLflow pyfunc -------------------------------------------------------------------------
    def load_context(self, context) -> None:  # noqa: D102
        self.booster()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:  # noqa: D102
        return self.probability(model_input)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_booster"] = None  # rebuilt from the text model after unpickling
        state["_paths"] = None
        return state

    # -- scoring -------------------------------------------------------------------------------
    def booster(self):
        if self._booster is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.booster_text)
        return self._booster

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, features) float matrix; categorical strings become their level's code."""
        return feature_matrix(frame, self.features, self.categorical_levels, "churn")

    def raw_logit(self, x: np.ndarray) -> np.ndarray:
        return self.booster().predict(x, raw_score=True, num_threads=self.num_threads)

    def contributions(self, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """(rows, features) contributions to the raw log-odds, read off the trees.

        Along each tree's path to the row's leaf, every split's change of the node value is
        credited to the split's feature (path attribution; XGBoost calls it approximate
        contributions). They add up with :meth:`expected_logit` to the raw score exactly and cost
        one leaf look-up per tree. LightGBM's exact TreeSHAP (``pred_contrib``) costs O(leaves x
        depth^2) per tree, too slow for a tuned model's deep trees over every customer the service
        scores when it loads.
        """
        tables, _ = self._path_tables()
        if len(x) == 0:
            return np.zeros((0, tables.shape[2]))
        leaves = self.booster().predict(x, pred_leaf=True, num_threads=self.num_threads)
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(x), len(tables))
        out = np.zeros((len(x), tables.shape[2]))
        for lo in range(0, len(x), chunk):  # a block of rows stays in cache across the trees
            block, block_leaves = out[lo : lo + chunk], leaves[lo : lo + chunk]
            for t, table in enumerate(tables):
                block += table[block_leaves[:, t]]
        return out

    def expected_logit(self) -> float:
        """The raw log-odds before any split: the sum of the trees' root values."""
        return self._path_tables()[1]

    def _path_tables(self) -> tuple[np.ndarray, float]:
        """Per tree and leaf, the summed value changes per feature on the path to that leaf."""
        if getattr(self, "_paths", None) is None:
            trees = self.booster().dump_model()["tree_info"]
            tables = np.zeros((len(trees), max(t["num_leaves"] for t in trees), len(self.features)))
            bias = 0.0
            for t, tree in enumerate(trees):
                root = tree["tree_structure"]
                if "split_feature" not in root:  # a single-leaf tree moves nobody
                    bias += root["leaf_value"]
                    continue
                bias += root["internal_value"]
                stack = [(root, np.zeros(len(self.features)))]
                while stack:
                    node, path = stack.pop()
                    for child in (node["left_child"], node["right_child"]):
                        step = path.copy()
                        value = child["internal_value"] if "split_feature" in child else child["leaf_value"]
                        step[node["split_feature"]] += value - node["internal_value"]
                        if "split_feature" in child:
                            stack.append((child, step))
                        else:
                            tables[t, child["leaf_index"]] = step
            self._paths = (tables, bias)
        return self._paths

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability per row."""
        return self.calibration.apply(self.raw_logit(self.matrix(frame)))

    def reasons(
        self, frame: pd.DataFrame, top: int = 3, contrib: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Per row, up to ``top`` features pushing the risk up most whose values read as a risk
        (:func:`features.actions.pick_reasons`), with their values in words. A row may have fewer,
        or none, when what pushes its risk up would be misread (a recent purchase, say)."""
        if contrib is None:
            contrib = self.contributions(self.matrix(frame))
        n_candidates = min(REASON_CANDIDATES, contrib.shape[1])
        order = np.argsort(-contrib, axis=1)[:, :n_candidates]
        declared = all_features()
        columns: dict[str, np.ndarray] = {}  # the columns that appear in some candidate, as arrays
        result = []
        for i, cols in enumerate(order):
            candidates = []
            for j in cols:
                if contrib[i, j] <= 0:
                    break
                name = self.features[j]
                if name not in columns:
                    columns[name] = frame[name].to_numpy()
                value = columns[name][i]
                value = value if isinstance(value, str) or value is None else float(value)
                candidates.append((name, value, float(contrib[i, j])))
            row = []
            for name, value, contribution in pick_reasons(candidates, top):
                feature = declared.get(name, (None, None))[1]
                text = reason_phrase(name, value) or (feature.say(value) if feature else name)
                row.append(
                    {"feature": name, "value": value, "text": text, "contribution": round(contribution, 4)}
                )
            result.append(row)
        return result

    def score(
        self,
        frame: pd.DataFrame,
        with_reasons: bool = True,
        top_reasons: int = 3,
        value: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """customer_id, churn_probability, risk_band, customer_value, value_at_risk (+ top_reasons,
        suggested_action). ``value``: each row's customer value, the value model's forecast where
        there is one (:func:`customer_values`); None: the snapshot's past-year revenue."""
        contrib = None
        if with_reasons:  # the contributions add up to the raw score: one pass over the trees
            contrib = self.contributions(self.matrix(frame))
            p = self.calibration.apply(contrib.sum(axis=1) + self.expected_logit())
        else:
            p = self.probability(frame)
        if value is None:
            value = customer_values(None, frame)
        scored = pd.DataFrame(
            {
                "customer_id": frame["customer_id"].to_numpy(),
                "churn_probability": p,
                "risk_band": risk_band(p),
                "customer_value": value,
                "value_at_risk": p * value,
            }
        )
        if with_reasons:
            reasons = self.reasons(frame, top_reasons, contrib)
            scored["top_reasons"] = [[r["text"] for r in row] for row in reasons]
            scored["suggested_action"] = [suggested_action(row) for row in reasons]
        return scored


def customer_values(value_model: ValueModel | None, frame: pd.DataFrame) -> np.ndarray:
    """Each row's customer value: the value model's forecast of net revenue if the customer stays,
    or, without a value model, the snapshot's past-year revenue (``customer_value``)."""
    if value_model is not None:
        return np.clip(value_model.forecast_if_stays(frame), 0.0, None)
    if "customer_value" in frame:
        return frame["customer_value"].to_numpy(dtype=float)
    return np.zeros(len(frame))


# The retention list is for customers who are still here: lapsed ones only when a request asks.
RETENTION_STAGES = tuple(stage for stage in LIFECYCLE_STAGES if stage != LAPSED)


def retention_stages(stages: list[str] | None) -> list[str]:
    """The lifecycle stages a churn list shows: those asked for, else every stage but lapsed."""
    return list(stages) if stages else list(RETENTION_STAGES)


def _in_stages(snapshot: pd.DataFrame, stages: list[str]) -> np.ndarray:
    unknown = sorted(set(stages) - set(LIFECYCLE_STAGES))
    if unknown:
        raise UserError(
            f"Unknown lifecycle stage {unknown[0]!r}: expected one of {', '.join(LIFECYCLE_STAGES)}."
        )
    if "lifecycle_stage" not in snapshot:
        raise UserError(
            "The snapshot has no lifecycle_stage column (it was built before the lifecycle family):"
            " rebuild it with `crm features build --online`."
        )
    return snapshot["lifecycle_stage"].isin(stages).to_numpy()


def filter_segment(
    snapshot: pd.DataFrame,
    tiers: list[str] | None = None,
    regions: list[str] | None = None,
    owns: list[str] | None = None,
    stages: list[str] | None = None,
) -> pd.DataFrame:
    """Customers of a segment: member tiers, regions, categories owned and lifecycle stages (all
    must hold; None or empty: any)."""
    keep = np.ones(len(snapshot), dtype=bool)
    if stages:
        keep &= _in_stages(snapshot, stages)
    if tiers:
        keep &= snapshot["member_tier"].isin(tiers).to_numpy()
    if regions:
        keep &= snapshot["region"].isin(regions).to_numpy()
    for category in owns or []:
        column = f"owns_{category}"
        if column not in snapshot:
            known = sorted(c.removeprefix("owns_") for c in snapshot.columns if c.startswith("owns_"))
            raise UserError(f"Unknown category {category!r} in owns: expected one of {', '.join(known)}.")
        keep &= snapshot[column].to_numpy() == 1
    return snapshot[keep]


SORT_KEYS = {"expected_loss": "value_at_risk", "probability": "churn_probability"}


def rank(scored: pd.DataFrame, min_probability: float, limit: int, sort: str) -> pd.DataFrame:
    """The rows of a scored segment that make the churn list, best first (ties by customer id)."""
    scored = scored[scored["churn_probability"] >= min_probability]
    key = SORT_KEYS[sort]
    return scored.sort_values([key, "customer_id"], ascending=[False, True], kind="stable").head(limit)


def churn_list(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    min_probability: float = 0.0,
    limit: int = 100,
    sort: str = "expected_loss",
    tiers: list[str] | None = None,
    regions: list[str] | None = None,
    owns: list[str] | None = None,
    stages: list[str] | None = None,
    value_model: ValueModel | None = None,
) -> pd.DataFrame:
    """The ranked churn list of a segment: probability, value at risk, reasons, suggested action,
    lifecycle stage. ``stages`` None: every stage but lapsed (the retention list). The customer
    value is ``value_model``'s forecast, or the past-year revenue without one.

    Probabilities are computed for the whole segment (vectorised); reasons only for the rows that
    make the list.
    """
    if sort not in CHURN_SORTS:
        raise UserError(f"Unknown sort {sort!r}: expected {' or '.join(CHURN_SORTS)}.")
    segment = filter_segment(snapshot, tiers, regions, owns, retention_stages(stages)).reset_index(drop=True)
    if segment.empty:
        empty = model.score(segment.head(0), with_reasons=False)
        return empty.assign(
            top_reasons=[], suggested_action=[], member_tier=[], region=[], lifecycle_stage=[]
        )
    values = customer_values(value_model, segment)
    top = rank(model.score(segment, with_reasons=False, value=values), min_probability, limit, sort)
    rows = segment.loc[top.index]
    reasons = model.reasons(rows)
    top = top.assign(
        top_reasons=[[r["text"] for r in row] for row in reasons],
        suggested_action=[suggested_action(row) for row in reasons],
        member_tier=rows["member_tier"].to_numpy(),
        region=rows["region"].to_numpy(),
        lifecycle_stage=rows["lifecycle_stage"].to_numpy(),
    )
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    return top.reset_index(drop=True)


# -- the win-back list ----------------------------------------------------------------------------


def return_probabilities(value_model: ValueModel, frame: pd.DataFrame) -> np.ndarray:
    """Each row's chance of coming back: the value model's chance of being active (a purchase or
    an engaged event) over its horizon, which for a lapsed customer is the chance of returning."""
    return value_model.stay_probability(frame)


def rank_winback(table: pd.DataFrame, min_probability: float, limit: int) -> pd.DataFrame:
    """Lapsed rows of a table with ``return_probability`` and ``customer_value``, ranked by the
    value an offer can win back: ``winback_value = return_probability x customer_value``."""
    table = table[table["return_probability"] >= min_probability]
    table = table.assign(winback_value=table["return_probability"] * table["customer_value"])
    return table.sort_values(["winback_value", "customer_id"], ascending=[False, True], kind="stable").head(
        limit
    )


def winback_list(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    value_model: ValueModel,
    min_probability: float = 0.0,
    limit: int = 100,
    tiers: list[str] | None = None,
    regions: list[str] | None = None,
    owns: list[str] | None = None,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """The lapsed customers of a segment ranked by return probability x forecast value, with the
    churn model's reasons (why they went quiet) and the action that fits them (without
    ``with_reasons``: the ranking only, as measuring a whole list needs)."""
    segment = filter_segment(snapshot, tiers, regions, owns, [LAPSED]).reset_index(drop=True)
    table = pd.DataFrame(
        {
            "customer_id": segment["customer_id"].to_numpy(),
            "return_probability": return_probabilities(value_model, segment) if len(segment) else [],
            "customer_value": customer_values(value_model, segment) if len(segment) else [],
        }
    )
    top = rank_winback(table, min_probability, limit)
    rows = segment.loc[top.index]
    if not with_reasons:
        return top.reset_index(drop=True)
    reasons = model.reasons(rows) if len(rows) else []
    top = top.assign(
        top_reasons=[[r["text"] for r in row] for row in reasons],
        suggested_action=[suggested_action(row) for row in reasons],
        member_tier=rows["member_tier"].to_numpy(),
        region=rows["region"].to_numpy(),
    )
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    return top.reset_index(drop=True)
