"""Tables of the whole product: the unit tree, people, duty, incidents, paging and audit.

Times are stored in UTC and always come back timezone-aware (see `UTCDateTime`). Enumerated
values are stored as short strings so that migrations stay plain on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Refuse naive datetimes and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC times only")
        value = value.astimezone(UTC)
        # SQLite keeps text; dropping the zone keeps its ordering and comparisons plain.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Attach UTC to what SQLite returns naive."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index),
    )


def _required_ts(*, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=index))


def _json(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=nullable))


class _Table(SQLModel):
    """The base of every table: its pydantic validator is built on first use, not at import.

    Rows are built by SQLAlchemy and by keyword (no validation), so building 22 validators
    while `zhiban run` starts (a third of this module's import) bought nothing.
    """

    model_config = {"defer_build": True}


class UnitKind(StrEnum):
    """The four levels of the emergency organisation."""

    COUNTY = "county"
    TOWNSHIP = "township"
    SCHOOL = "school"
    CLASS = "class"


class Role(StrEnum):
    """Role keys of SPEC §2."""

    STAFF = "staff"
    DUTY_LEADER = "duty_leader"
    SAFETY_OFFICER = "safety_officer"
    PRINCIPAL = "principal"
    OFFICER = "officer"
    DESK = "desk"
    ADMIN = "admin"


class ShiftKind(StrEnum):
    """A staff shift or a leader-on-duty (带班领导) shift."""

    STAFF = "staff"
    LEADER = "leader"


class Unit(_Table, table=True):
    """A county bureau, township central school, school or class."""

    __tablename__ = "units"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=16)
    parent_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    # Materialised path of ids ("/1/4/9/"): a scope check is one prefix comparison.
    path: str = Field(default="", max_length=255, index=True)
    latitude: float | None = None
    longitude: float | None = None
    radius_m: float | None = None
    duty_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)


class Person(_Table, table=True):
    """Someone on the roster."""

    __tablename__ = "people"

    id: int | None = Field(default=None, primary_key=True)
    staff_no: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=80)
    unit_id: int = Field(foreign_key="units.id", index=True)
    phone: str | None = Field(default=None, max_length=32, unique=True)
    language: str | None = Field(default=None, max_length=8)
    active: bool = True
    # Where e-mailed pages go (people.csv's optional `email` column); not unique: a desk's
    # shared mailbox may serve several people.
    email: str | None = Field(default=None, max_length=254)


class RoleGrant(_Table, table=True):
    """A role held at a unit; it covers that unit and everything below it."""

    __tablename__ = "role_grants"
    __table_args__ = (sa.UniqueConstraint("person_id", "role", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    role: str = Field(max_length=24)
    unit_id: int = Field(foreign_key="units.id", index=True)


class Account(_Table, table=True):
    """A messaging account linked to a roster person (Telegram first)."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    channel: str = Field(default="telegram", max_length=16)
    external_id: int = Field(sa_type=sa.BigInteger)
    chat_id: int = Field(sa_type=sa.BigInteger)
    username: str | None = Field(default=None, max_length=64)
    linked_at: datetime = _required_ts()
    unlinked_at: datetime | None = _ts(nullable=True)
    # Set when the platform refuses delivery (blocked the bot, never pressed Start).
    unreachable_since: datetime | None = _ts(nullable=True)
    unreachable_reason: str | None = Field(default=None, max_length=200)


class Invite(_Table, table=True):
    """A one-time, expiring join code for one roster person."""

    __tablename__ = "invites"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="people.id")
    created_at: datetime = _required_ts()
    expires_at: datetime = _required_ts()
    used_at: datetime | None = _ts(nullable=True)
    used_by_account_id: int | None = Field(default=None, foreign_key="accounts.id")
    revoked_at: datetime | None = _ts(nullable=True)


class Shift(_Table, table=True):
    """A duty shift at a post of a unit; no person means an unfilled post."""

    __tablename__ = "shifts"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "post", "start"),
        sa.Index("ix_shifts_person_start", "person_id", "start"),
        sa.Index("ix_shifts_unplanned", "planned_at", "start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    post: str = Field(max_length=60)
    start: datetime = _required_ts(index=True)
    end: datetime = _required_ts()
    person_id: int | None = Field(default=None, foreign_key="people.id")
    kind: str = Field(default=ShiftKind.STAFF, max_length=16)
    source: str = Field(default="import", max_length=16)
    covered_by_id: int | None = Field(default=None, foreign_key="people.id")
    # When its reminders and missed-shift deadlines were scheduled (a few hours ahead).
    planned_at: datetime | None = _ts(nullable=True)


class ClockEvent(_Table, table=True):
    """A clock-in or clock-out, with where it was made and the duty log at clock-out."""

    __tablename__ = "clock_events"

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shifts.id", index=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    kind: str = Field(max_length=8)  # "in" or "out"
    at: datetime = _required_ts()
    late_minutes: int = 0
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    live_location: bool = False
    duty_log: str | None = Field(default=None, sa_type=sa.Text)
    handover: str | None = Field(default=None, sa_type=sa.Text)
    attachments: list[str] | None = _json()


class ShiftSwap(_Table, table=True):
    """A request to hand a shift to a colleague: offered, accepted, approved or refused."""

    __tablename__ = "shift_swaps"

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shifts.id", index=True)
    from_person_id: int = Field(foreign_key="people.id")
    to_person_id: int = Field(foreign_key="people.id")
    status: str = Field(default="offered", max_length=16)
    requested_at: datetime = _required_ts()
    accepted_at: datetime | None = _ts(nullable=True)
    decided_at: datetime | None = _ts(nullable=True)
    decided_by_id: int | None = Field(default=None, foreign_key="people.id")


class Incident(_Table, table=True):
    """A reported safety incident (or a drill), from first report to final report."""

    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)  # "20261128-007"
    unit_id: int = Field(foreign_key="units.id", index=True)
    reporter_id: int | None = Field(default=None, foreign_key="people.id")
    category: str = Field(max_length=32)
    severity: str = Field(max_length=24)
    status: str = Field(default="open", max_length=16, index=True)
    place: str | None = Field(default=None, max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    description: str = Field(default="", sa_type=sa.Text)
    casualties: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = _required_ts()
    reported_at: datetime = _required_ts(index=True)
    # The highest unit the report has reached so far (school → township → county).
    reached_unit_id: int | None = Field(default=None, foreign_key="units.id")
    reported_late: bool = False
    forwarded_late: bool = False
    is_drill: bool = False
    closed_at: datetime | None = _ts(nullable=True)
    attachments: list[str] | None = _json()


class IncidentEntry(_Table, table=True):
    """One line of an incident's timeline: report, follow-up, acknowledgement, pass-up, close."""

    __tablename__ = "incident_entries"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    at: datetime = _required_ts()
    kind: str = Field(max_length=24)
    person_id: int | None = Field(default=None, foreign_key="people.id")
    unit_id: int | None = Field(default=None, foreign_key="units.id")
    text: str | None = Field(default=None, sa_type=sa.Text)
    attachments: list[str] | None = _json()


class Checkin(_Table, table=True):
    """A safety check-in (平安报告) owed by one person on duty at a scheduled time."""

    __tablename__ = "checkins"
    __table_args__ = (sa.UniqueConstraint("person_id", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    shift_id: int | None = Field(default=None, foreign_key="shifts.id")
    due_at: datetime = _required_ts(index=True)
    deadline: datetime = _required_ts()
    answered_at: datetime | None = _ts(nullable=True)
    answer: str | None = Field(default=None, max_length=16)  # "normal" or "problem"
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")


class DailyReport(_Table, table=True):
    """A school's daily safety report (日报); "nothing to report" is an answer."""

    __tablename__ = "daily_reports"
    __table_args__ = (sa.UniqueConstraint("unit_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    day: date
    deadline: datetime = _required_ts()
    submitted_at: datetime | None = _ts(nullable=True)
    submitted_by_id: int | None = Field(default=None, foreign_key="people.id")
    nothing_to_report: bool = False
    text: str | None = Field(default=None, sa_type=sa.Text)


class DeadlineStatus(StrEnum):
    """Lifecycle of a deadline row."""

    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Deadline(_Table, table=True):
    """At `due_at`, do `kind` for a subject; idempotent by `key` (e.g. "incident:17:step:2")."""

    __tablename__ = "deadlines"
    __table_args__ = (sa.Index("ix_deadlines_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=120, unique=True)
    kind: str = Field(max_length=32)
    subject_type: str = Field(max_length=24)
    subject_id: int
    due_at: datetime = _required_ts()
    status: str = Field(default=DeadlineStatus.PENDING, max_length=12)
    payload: dict[str, Any] | None = _json()
    created_at: datetime = _required_ts()
    handled_at: datetime | None = _ts(nullable=True)
    handled_by: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=300)
    # True when it was handled well after its time (the bot was down).
    late: bool = False


class Escalation(_Table, table=True):
    """A running escalation policy for one subject (an incident, a missed shift, ...)."""

    __tablename__ = "escalations"
    __table_args__ = (sa.UniqueConstraint("subject_type", "subject_id", "policy"),)

    id: int | None = Field(default=None, primary_key=True)
    policy: str = Field(max_length=40)
    subject_type: str = Field(max_length=24)
    subject_id: int
    unit_id: int = Field(foreign_key="units.id", index=True)
    started_at: datetime = _required_ts()
    status: str = Field(default="active", max_length=16)
    acknowledged_at: datetime | None = _ts(nullable=True)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="people.id")
    resolved_at: datetime | None = _ts(nullable=True)
    resolved_by_id: int | None = Field(default=None, foreign_key="people.id")
    # What the page says: catalog ids and parameters, rendered in each reader's language.
    details: dict[str, Any] | None = _json()
    is_drill: bool = False
    # When the matter happened (an incident's occurrence); report deadlines count from here.
    occurred_at: datetime | None = _ts(nullable=True)
    # Bumped whenever the next engine tick is planned, so each tick has its own deadline key.
    ticks: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class EscalationLevel(_Table, table=True):
    """How far a matter has got at one level (unit, parent, county): reached, acknowledged."""

    __tablename__ = "escalation_levels"
    __table_args__ = (sa.UniqueConstraint("escalation_id", "level"),)

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalations.id", index=True)
    level: str = Field(max_length=8)
    unit_id: int = Field(foreign_key="units.id")
    reached_at: datetime = _required_ts()
    # "start", "silence", "deadline", "passed_up", "direct", "phone"
    reached_how: str = Field(max_length=16)
    reached_by_id: int | None = Field(default=None, foreign_key="people.id")
    acknowledged_at: datetime | None = _ts(nullable=True)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="people.id")
    # Reached only because the report deadline forced it (迟报 of the level below).
    late: bool = False


class EscalationEvent(_Table, table=True):
    """One line of a matter's timeline: started, reached a level, paged, acknowledged, ..."""

    __tablename__ = "escalation_events"
    __table_args__ = (sa.UniqueConstraint("escalation_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalations.id", index=True)
    at: datetime = _required_ts()
    kind: str = Field(max_length=24)
    level: str | None = Field(default=None, max_length=8)
    step: int | None = None
    repeat: int | None = None
    person_id: int | None = Field(default=None, foreign_key="people.id")
    # Idempotency for what must happen once ("fire:2:0"); empty for repeatable entries.
    key: str | None = Field(default=None, max_length=40)
    detail: dict[str, Any] | None = _json()


class EngineMark(_Table, table=True):
    """A named point in time the engine keeps across restarts (planning high-water mark)."""

    __tablename__ = "engine_marks"

    name: str = Field(primary_key=True, max_length=40)
    at: datetime = _required_ts()


class Page(_Table, table=True):
    """One page to one person for one step of an escalation (repeats reply to it)."""

    __tablename__ = "pages"
    __table_args__ = (sa.UniqueConstraint("escalation_id", "step", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalations.id", index=True)
    step: int
    person_id: int = Field(foreign_key="people.id", index=True)
    unit_id: int = Field(foreign_key="units.id")
    role: str = Field(max_length=24)
    # The level of the matter this page asks to acknowledge (a stand-in keeps the original's).
    level: str = Field(default="unit", max_length=8, sa_column_kwargs={"server_default": "unit"})
    created_at: datetime = _required_ts()
    # How many times it went out: 1 for the first page, more for repeats.
    sent_count: int = 0
    # "active", "undeliverable" (no account, blocked) or "closed" (acknowledged, resolved).
    status: str = Field(default="active", max_length=16)
    error: str | None = Field(default=None, max_length=200)
    # Set when this page stands in for an undeliverable one.
    replaces_page_id: int | None = Field(default=None, foreign_key="pages.id")


class OutboxStatus(StrEnum):
    """Lifecycle of an outgoing message."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


class OutboxMessage(_Table, table=True):
    """An outgoing message, written in the transaction of the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    created_at: datetime = _required_ts()
    not_before: datetime = _required_ts()
    person_id: int | None = Field(default=None, foreign_key="people.id", index=True)
    chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    kind: str = Field(default="notice", max_length=16)
    page_id: int | None = Field(default=None, foreign_key="pages.id")
    method: str = Field(default="sendMessage", max_length=24)
    body: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    reply_to_outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    status: str = Field(default=OutboxStatus.PENDING, max_length=12)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=300)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _ts(nullable=True)
    sent_at: datetime | None = _ts(nullable=True)
    sent_message_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    late: bool = False
    # A one-way channel's name (`[[channels]]`) for a robot message; NULL for Telegram.
    channel: str | None = Field(default=None, max_length=40)


class AuditEntry(_Table, table=True):
    """Who did what, when, from which account."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _required_ts(index=True)
    actor_person_id: int | None = Field(default=None, foreign_key="people.id")
    actor_account: str | None = Field(default=None, max_length=64)  # "telegram:12345", "cli"
    action: str = Field(max_length=40)
    subject_type: str | None = Field(default=None, max_length=24)
    subject_id: int | None = None
    unit_id: int | None = Field(default=None, foreign_key="units.id")
    allowed: bool = True
    detail: dict[str, Any] | None = _json()


class ConversationDraft(_Table, table=True):
    """A conversation's state and draft, so a restart mid-conversation loses nothing."""

    __tablename__ = "conversation_drafts"
    __table_args__ = (sa.UniqueConstraint("conversation", "chat_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation: str = Field(max_length=40)
    chat_id: int = Field(sa_type=sa.BigInteger)
    user_id: int = Field(sa_type=sa.BigInteger)
    state: int | None = None
    data: dict[str, Any] | None = _json()
    updated_at: datetime = _required_ts()


class IncidentCounter(_Table, table=True):
    """The last incident number handed out per local day (for "20261128-007")."""

    __tablename__ = "incident_counters"

    day: str = Field(primary_key=True, max_length=8)
    last: int = 0


metadata = SQLModel.metadata
