"""The night's writes: sends, their rewards and their deliveries, as ``INSERT … SELECT`` statements
over the selection (one data-modifying statement on PostgreSQL, a few in steps elsewhere)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection

from members.models import CHANNELS, Member, WalletReward

from ..messages import reward_words
from ..models import Arm, CampaignSend, EvaluationRun, SendOutcome
from ..rules import reachable_sql
from .dates import local_day_start
from .schedule import NightSchedule
from .selection import _selection_ctes
from .sql import _db_value, _epoch_to_timestamp_sql, _values_sql


class NightConflict(Exception):
    """The night's sends collided with sends written meanwhile by something other than a night of
    the same business (nights of one business take turns on NIGHT_LOCK): rolled back whole, the
    next tick evaluates the date again."""


_SEQUENCES: dict[str, str] = {}


def _send_sequence() -> str:
    table = CampaignSend._meta.db_table
    if table not in _SEQUENCES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            _SEQUENCES[table] = cursor.fetchone()[0]
    return _SEQUENCES[table]


@dataclass
class _Counts:
    sends: list[tuple[int, int, str, int]]  # (campaign, send number, outcome, rows)
    deliveries: dict[int, int]


@dataclass
class _Night(NightSchedule):
    """The writes of one business's night, built from shared SQL pieces (their send times:
    ``NightSchedule``)."""

    run: EvaluationRun
    messages: dict[int, int] = field(default_factory=dict)  # campaign id → its CampaignMessage id tonight

    # -- the pieces

    ARM_SQL = (
        f"CASE WHEN r.bucket < r.control_lt THEN '{Arm.CONTROL}' WHEN r.bucket < r.b_lt THEN '{Arm.B}' "
        f"ELSE '{Arm.A}' END"
    )
    OUTCOME_SQL = (
        f"CASE WHEN r.rn <> 1 THEN '{SendOutcome.CAPPED}' WHEN r.bucket < r.control_lt "
        f"THEN '{SendOutcome.CONTROL}' ELSE '{SendOutcome.SCHEDULED}' END"
    )

    def sends_select(self, *, with_ids: bool = False) -> tuple[str, list]:
        """The SELECT that feeds the send INSERT from the ``due`` rows (``with_ids``: the rows
        carry ``send_id`` and ``outcome`` already)."""
        sql = (
            f"SELECT {'r.send_id, ' if with_ids else ''}%s, r.c_id, r.m_id, %s, r.send_number, {self.ARM_SQL}, %s, "
            f"{'r.outcome' if with_ids else self.OUTCOME_SQL}, %s, {self.message_sql()} "
            "FROM due r WHERE 1 = 1 ORDER BY r.m_id ON CONFLICT DO NOTHING"
        )
        return sql, [self.business.pk, self.run.pk, _db_value(self.local_date), _db_value(self.now)]

    SENDS_HEAD = (
        f"INSERT INTO {CampaignSend._meta.db_table} (business_id, campaign_id, member_id, run_id, send_number, "
        "arm, local_date, outcome, created_at, message_id) "
    )

    def message_sql(self) -> str:
        """Each send's ``message_id``: a constant per campaign (ids from the database, as literals)."""
        if not self.messages:
            return "NULL"
        return f"CASE r.c_id {' '.join(f'WHEN {int(c)} THEN {int(m)}' for c, m in self.messages.items())} END"

    def reward_rows(self) -> list[list]:
        rows = []
        for campaign in self.campaigns:
            tz = campaign.business.tzinfo
            for number in range(1, campaign.max_sends + 1):
                reward = campaign.step(number)["reward"]
                if reward:
                    expires = local_day_start(self.local_date + timedelta(days=reward["expiry_days"] + 1), tz)
                    title = reward_words(reward, currency=campaign.business.currency)[:140]
                    rows.append([campaign.pk, number, reward["kind"], title, json.dumps(reward), expires])
        return rows

    def rewards_values(self, rows: list[list]) -> tuple[str, list]:
        columns = [("cid", "bigint"), ("send_number", "integer"), ("kind", "varchar"), ("title", "varchar"),
                   ("details", "jsonb"), ("expires_at", "timestamp with time zone")]  # fmt: skip
        return _values_sql("rw", columns, rows)

    def rewards_insert(self, source: str, *, ctes: str = "") -> tuple[str, list]:
        """Offer each new send's reward with it (SPEC §6): claimed later, exactly once. ``ctes``:
        WITH tables of this statement's own (when they are not in an outer WITH)."""
        sql = (
            f"INSERT INTO {WalletReward._meta.db_table} (business_id, member_id, send_id, kind, title, details, "  # noqa: S608
            f"status, offered_at, expires_at, created_at) {f'WITH {ctes} ' if ctes else ''}"
            "SELECT s.business_id, s.member_id, s.id, rw.kind, rw.title, rw.details, 'offered', %s, rw.expires_at, %s "
            f"FROM {source} s JOIN rw ON rw.cid = s.campaign_id AND rw.send_number = s.send_number "
            f"WHERE s.outcome = '{SendOutcome.SCHEDULED}' ON CONFLICT DO NOTHING"
        )
        return sql, [_db_value(self.now), _db_value(self.now)]

    def rewards_offered(self, sends: list[tuple[int, int, str, int]]) -> dict[int, int]:
        """Rewards written: one per new scheduled send whose step carries one (new send ids, so no
        conflict can have skipped any)."""
        with_reward = {(cid, number) for cid, number, *_ in self.reward_rows()}
        offered: Counter = Counter()
        for campaign_id, number, outcome, n in sends:
            if outcome == SendOutcome.SCHEDULED and (campaign_id, number) in with_reward:
                offered[campaign_id] += n
        return dict(offered)

    def deliveries_insert(self, source: str, *, ctes: str = "") -> str | None:
        """One delivery per new scheduled send and reachable channel, at the night's send-at time,
        staggered by the channel's interval, spilling to the next allowed day at its daily cap (for
        SMS and WhatsApp also at 21:00, and from 08:00 at the earliest: ``calendars``).
        ``source`` (a WITH table) yields (id, business_id, campaign_id, member_id, outcome,
        r_<channel>…). Each channel is its own part, numbered in member order only where paced."""
        from notifications.models import Delivery

        parts = []
        for channel in CHANNELS:
            used = [c for c in self.campaigns if channel in (c.channels or [])]
            if not used:
                continue
            paced = any(
                int(((c.pacing or {}).get(channel) or {}).get(key) or 0)
                for c in used
                for key in ("interval_seconds", "daily_cap")
            )
            k = "ROW_NUMBER() OVER (PARTITION BY q.campaign_id ORDER BY q.member_id)" if paced else "1"
            parts.append(
                "SELECT q.id, q.business_id, q.campaign_id, q.member_id, p.channel, p.step, p.per_day, p.backlog, "  # noqa: S608
                f"{k} AS k FROM {source} q JOIN p ON p.cid = q.campaign_id AND p.channel = '{channel}' "
                f"WHERE q.outcome = '{SendOutcome.SCHEDULED}' AND q.r_{channel}"
            )
        if not parts:
            return None  # (only campaigns without channels)
        slot = "(s.k - 1 + s.backlog)"
        when = _epoch_to_timestamp_sql(f"d.start_epoch + ({slot} %% s.per_day) * s.step")
        return (
            f"INSERT INTO {Delivery._meta.db_table} (business_id, send_id, campaign_id, member_id, channel, status, "  # noqa: S608
            f"scheduled_at, attempts, claim_token, provider_id, last_error, created_at, updated_at) "
            f"{f'WITH {ctes} ' if ctes else ''}"
            f"SELECT s.business_id, s.id, s.campaign_id, s.member_id, s.channel, 'scheduled', {when}, 0, '', '', '', "
            f"%s, %s FROM ({' UNION ALL '.join(parts)}) s "
            f"JOIN cal d ON d.cid = s.campaign_id AND d.channel = s.channel AND d.idx = {slot} / s.per_day "
            "WHERE 1 = 1 ON CONFLICT DO NOTHING"
        )

    # -- the two ways of writing them

    def write_one_statement(self) -> _Counts:
        """PostgreSQL: select, write sends, rewards and deliveries, and count, in one statement.

        The due rows take their send ids from the sequence up front, so the rewards and the
        deliveries are written from the same rows as the sends, with no join back to them.
        """
        selection, params = _selection_ctes(
            business=self.business, campaigns=self.campaigns, local_date=self.local_date, reach=True, name="picked"
        )
        sends_sql, sends_params = self.sends_select(with_ids=True)
        pacing_sql, pacing_params = self.pacing_ctes()
        reward_rows = self.reward_rows()
        flags = ", ".join(f"r.r_{ch}" for ch in CHANNELS)
        ctes = [
            selection,
            # A volatile nextval(): PostgreSQL computes this once, whatever reads it.
            f"due AS (SELECT r.*, nextval('{_send_sequence()}') AS send_id, {self.OUTCOME_SQL} AS outcome "
            "FROM picked r)",
            f"fresh AS (SELECT r.send_id AS id, {int(self.business.pk)} AS business_id, r.c_id AS campaign_id, "
            f"r.m_id AS member_id, r.send_number, r.outcome, {flags} FROM due r)",
            f"ins AS ({self.SENDS_HEAD.replace('(business_id', '(id, business_id')}{sends_sql} "
            "RETURNING campaign_id, send_number, outcome)",
            pacing_sql,
        ]
        params += sends_params + pacing_params
        deliveries = self.deliveries_insert("fresh")
        if deliveries:
            ctes.append(f"dl AS ({deliveries} RETURNING campaign_id)")
            params += [_db_value(self.now), _db_value(self.now)]
        else:
            ctes.append("dl AS (SELECT cid AS campaign_id FROM p WHERE 1 = 0)")
        if reward_rows:
            rewards_values, rewards_params = self.rewards_values(reward_rows)
            rewards_sql, rewards_insert_params = self.rewards_insert("fresh")
            ctes += [rewards_values, f"rwi AS ({rewards_sql} RETURNING 1)"]
            params += rewards_params + rewards_insert_params
        sql = (
            f"WITH {', '.join(ctes)} "
            "SELECT campaign_id, send_number, outcome, COUNT(*) FROM ins GROUP BY campaign_id, send_number, outcome "
            "UNION ALL SELECT campaign_id, -1, '', COUNT(*) FROM dl GROUP BY campaign_id "
            "UNION ALL SELECT 0, -2, '', COUNT(*) FROM due"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        sends = [r for r in rows if r[1] > 0]
        due = next(n for _, number, _, n in rows if number == -2)
        if sum(n for *_, n in sends) != due:
            # A send conflicted with one written meanwhile (only another evaluation of this
            # business at the same moment can do that): its deliveries would point nowhere.
            raise NightConflict(f"business {self.business.pk}, {self.local_date}: {due} due, fewer sends written")
        return _Counts(sends=sends, deliveries={campaign_id: n for campaign_id, number, _, n in rows if number == -1})

    def write_in_steps(self) -> _Counts:
        """Elsewhere (SQLite has no data-modifying WITH): sends, their counts, rewards, deliveries."""
        selection, params = _selection_ctes(
            business=self.business, campaigns=self.campaigns, local_date=self.local_date
        )
        sends_sql, sends_params = self.sends_select()
        sends_table = CampaignSend._meta.db_table
        new_sends = f"(SELECT * FROM {sends_table} WHERE business_id = %s AND run_id = %s)"
        with connection.cursor() as cursor:
            cursor.execute(f"{self.SENDS_HEAD}WITH {selection} {sends_sql}", params + sends_params)
            cursor.execute(
                f"SELECT campaign_id, send_number, outcome, COUNT(*) FROM {new_sends} x "  # noqa: S608
                "GROUP BY campaign_id, send_number, outcome",
                [self.business.pk, self.run.pk],
            )
            sends = cursor.fetchall()
            reward_rows = self.reward_rows()
            if reward_rows:
                rewards_values, rewards_params = self.rewards_values(reward_rows)
                rewards_sql, rewards_insert_params = self.rewards_insert(new_sends, ctes=rewards_values)
                cursor.execute(rewards_sql, rewards_params + rewards_insert_params + [self.business.pk, self.run.pk])
            pacing_sql, pacing_params = self.pacing_ctes()
            flags = ", ".join(f"{reachable_sql(ch)} AS r_{ch}" for ch in CHANNELS)
            fresh = (
                f"fresh AS (SELECT cs.id, cs.business_id, cs.campaign_id, cs.member_id, cs.outcome, {flags} "  # noqa: S608
                f"FROM {sends_table} cs JOIN {Member._meta.db_table} m ON m.id = cs.member_id "
                "WHERE cs.business_id = %s AND cs.run_id = %s)"
            )
            deliveries: Counter = Counter()
            insert = self.deliveries_insert("fresh", ctes=f"{pacing_sql}, {fresh}")
            if insert:
                cursor.execute(
                    f"{insert} RETURNING campaign_id",
                    pacing_params + [self.business.pk, self.run.pk, _db_value(self.now), _db_value(self.now)],
                )
                deliveries.update(campaign_id for (campaign_id,) in cursor.fetchall())
        return _Counts(sends=sends, deliveries=dict(deliveries))
