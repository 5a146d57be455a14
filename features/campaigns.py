"""Randomised campaigns as data: the campaigns table, each customer's outcome, the point-in-time
rows an uplift model learns from, and the measured effect of a past campaign.

A campaign is the set of rows of one ``campaign_id`` in the contract's ``campaigns`` table; its
start is its earliest ``ts``. Its outcomes are read off the events after the start:

- **retained**: an activity event (``vocab.ACTIVITY_EVENT_TYPES``) in
  ``[start + offset, start + offset + days)``. The offset skips the first weeks, when an offer's
  own purchases happen: what counts is that the customer is still there afterwards;
- **revenue**: the net revenue (purchases less returns) of ``[start, start + offset + days)``.

The features of a campaign's customers are the snapshot at its start (events with ``ts < start``
only), so nothing the offer caused can leak into them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from features.errors import UserError
from features.families import DUCKDB
from features.labels import check_label_window
from features.snapshot import build_snapshot
from features.vocab import ACTIVITY_EVENT_TYPES, CONTROL, TREATMENT

Z_95 = 1.959964  # the standard normal's 97.5% quantile: a two-sided 95% interval


@dataclass(frozen=True)
class OutcomeWindow:
    """When a campaign's outcomes are read, in days from its start."""

    offset_days: int = 28
    days: int = 91

    def retention_bounds(self, start: datetime) -> tuple[datetime, datetime]:
        """``[start + offset, start + offset + days)``: the window of the retention outcome."""
        return start + timedelta(days=self.offset_days), self.end(start)

    def end(self, start: datetime) -> datetime:
        """Where both outcome windows end."""
        return start + timedelta(days=self.offset_days + self.days)


DEFAULT_WINDOW = OutcomeWindow()


@dataclass(frozen=True)
class Campaign:
    """One campaign of the campaigns table."""

    campaign_id: str
    offer: str
    start: datetime
    treated: int
    control: int
    cost: float  # the total cost of its treatment arm


def list_campaigns(con: duckdb.DuckDBPyConnection) -> list[Campaign]:
    """Every campaign of the ``campaigns`` view, by start (one offer each: the most frequent one)."""
    rows = con.execute(
        f"""
        SELECT campaign_id, mode(offer), min(ts),
               count(*) FILTER (WHERE arm = '{TREATMENT}'), count(*) FILTER (WHERE arm = '{CONTROL}'),
               coalesce(sum(cost) FILTER (WHERE arm = '{TREATMENT}'), 0.0)
        FROM campaigns GROUP BY campaign_id ORDER BY 3, 1
        """
    ).fetchall()
    return [Campaign(r[0], r[1], r[2], int(r[3]), int(r[4]), float(r[5])) for r in rows]


def find_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str) -> Campaign:
    """The campaign ``campaign_id``; a clear error when the table has none of that name."""
    campaigns = list_campaigns(con)
    for campaign in campaigns:
        if campaign.campaign_id == campaign_id:
            return campaign
    known = ", ".join(c.campaign_id for c in campaigns[:10]) or "none: the data has no campaigns table"
    raise UserError(f"No campaign {campaign_id!r} in the campaigns table (campaigns: {known}).")


def campaign_outcomes(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, window: OutcomeWindow = DEFAULT_WINDOW
) -> pd.DataFrame:
    """``customer_id, arm, treated, cost, retained, revenue`` of every customer of the campaign.

    The outcome windows must end inside the data (the label rule of :mod:`features.labels`).
    """
    check_label_window(con, campaign.start, window.offset_days + window.days)
    first, end = window.retention_bounds(campaign.start)
    activity = ", ".join(f"'{e}'" for e in ACTIVITY_EVENT_TYPES)
    start_sql, first_sql, end_sql = (DUCKDB.ts(t) for t in (campaign.start, first, end))
    frame = con.execute(
        f"""
        WITH audience AS (
          SELECT customer_id, any_value(arm) AS arm, coalesce(sum(cost), 0.0) AS cost
          FROM campaigns WHERE campaign_id = ? GROUP BY customer_id),
        later AS (
          SELECT customer_id,
            count(*) FILTER (WHERE event_type IN ({activity}) AND ts >= {first_sql}) > 0 AS retained,
            coalesce(sum(CASE WHEN event_type = 'purchase' THEN amount
                              WHEN event_type = 'return' THEN -amount END), 0.0) AS revenue
          FROM events WHERE ts >= {start_sql} AND ts < {end_sql}
            AND customer_id IN (SELECT customer_id FROM audience)
          GROUP BY customer_id)
        SELECT a.customer_id, a.arm, CAST(a.arm = '{TREATMENT}' AS INTEGER) AS treated, a.cost,
               CAST(coalesce(l.retained, false) AS INTEGER) AS retained,
               coalesce(l.revenue, 0.0) AS revenue
        FROM audience a LEFT JOIN later l USING (customer_id)
        ORDER BY a.customer_id
        """,
        [campaign.campaign_id],
    ).df()
    return frame


def campaign_frame(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, window: OutcomeWindow = DEFAULT_WINDOW
) -> pd.DataFrame:
    """The campaign's customers with their snapshot at its start, arm and outcomes: the rows an
    uplift model learns from (a customer the snapshot does not know has no row)."""
    snapshot = build_snapshot(con, campaign.start)
    outcomes = campaign_outcomes(con, campaign, window)
    frame = snapshot.merge(outcomes, on="customer_id", how="inner")
    frame.insert(1, "campaign_id", campaign.campaign_id)
    frame.insert(2, "campaign_start", pd.Timestamp(campaign.start))
    return frame


# ---------------------------------------------------------------------------------------------
# the measured effect of a past campaign


@dataclass(frozen=True)
class Effect:
    """Treatment minus control of one outcome's mean, with a two-sided 95% interval."""

    treated_mean: float
    control_mean: float
    difference: float
    low: float
    high: float

    @classmethod
    def of(cls, treated: np.ndarray, control: np.ndarray) -> Effect:
        """The difference in means with its normal (Welch) interval: the arms are independent draws."""
        t, c = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
        if len(t) < 2 or len(c) < 2:
            raise UserError("A campaign needs at least two customers in each arm to be measured.")
        diff = t.mean() - c.mean()
        se = float(np.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c)))
        return cls(float(t.mean()), float(c.mean()), float(diff), diff - Z_95 * se, diff + Z_95 * se)


@dataclass(frozen=True)
class CampaignMeasurement:
    """The realised effect of a campaign on retention and revenue, per treated customer."""

    campaign_id: str
    offer: str
    start: datetime
    treated: int
    control: int
    retention: Effect
    revenue: Effect
    cost_per_treated: float
    window: OutcomeWindow

    def to_dict(self) -> dict:
        """Plain values for JSON."""
        doc = asdict(self)
        doc["start"] = f"{self.start:%Y-%m-%d %H:%M:%S}"
        return doc


def measure_campaign(
    con: duckdb.DuckDBPyConnection, campaign_id: str, window: OutcomeWindow = DEFAULT_WINDOW
) -> CampaignMeasurement:
    """Treatment against control of a past randomised campaign: the retention and revenue effect."""
    campaign = find_campaign(con, campaign_id)
    outcomes = campaign_outcomes(con, campaign, window)
    treated = outcomes["treated"].to_numpy(dtype=bool)
    retained, revenue = outcomes["retained"].to_numpy(), outcomes["revenue"].to_numpy()
    return CampaignMeasurement(
        campaign_id=campaign.campaign_id,
        offer=campaign.offer,
        start=campaign.start,
        treated=int(treated.sum()),
        control=int((~treated).sum()),
        retention=Effect.of(retained[treated], retained[~treated]),
        revenue=Effect.of(revenue[treated], revenue[~treated]),
        cost_per_treated=float(outcomes.loc[treated, "cost"].mean()) if treated.any() else 0.0,
        window=window,
    )
