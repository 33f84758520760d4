"""Configuration: config.toml read once into typed, validated settings."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

TOKEN_ENV = "ZHIBAN_TELEGRAM_TOKEN"
WEBHOOK_SECRET_ENV = "ZHIBAN_WEBHOOK_SECRET"
LINK_SECRET_ENV = "ZHIBAN_LINK_SECRET"
# The least length of the acknowledge links' signing secret (HMAC-SHA256 key).
LINK_SECRET_MIN_LENGTH = 32
# The longest `[web] link_valid_for`: a used link's mark is looked for this far back.
LONGEST_LINK_VALIDITY = timedelta(days=30)
EMAIL_PASSWORD_ENV = "ZHIBAN_SMTP_PASSWORD"  # the usual name; `[email] password_env` picks it
CONFIG_ENV = "ZHIBAN_CONFIG"
DEFAULT_CONFIG_PATH = Path("config.toml")

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_LABEL = r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one line per key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_duration(value: object) -> timedelta:
    """Turn "90s", "10m", "1h30m" or "7d" into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError('expected a duration such as "90s", "10m", "1h" or "7d"')
    match = _DURATION_RE.match(value.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f'"{value}" is not a duration; write it like "90s", "10m", "1h" or "7d"')
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Write a timedelta back in the config's notation ("1h30m")."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def parse_clock_time(value: object) -> time:
    """Turn "HH:MM" into a time of day."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or (match := _CLOCK_RE.match(value.strip())) is None:
        raise ValueError(f'"{value}" is not a time of day; write it like "08:30"')
    return time(int(match.group(1)), int(match.group(2)))


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ClockTime = Annotated[time, BeforeValidator(parse_clock_time)]


class Severity(StrEnum):
    """Incident severities, most serious first (特别重大、重大、较大、一般)."""

    ESPECIALLY_SERIOUS = "especially_serious"
    SERIOUS = "serious"
    LARGE = "large"
    GENERAL = "general"


class Level(StrEnum):
    """Where an escalation step pages, relative to the unit of the subject."""

    UNIT = "unit"
    PARENT = "parent"
    COUNTY = "county"


ROLE_KEYS = ("staff", "duty_leader", "safety_officer", "principal", "officer", "desk", "admin")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSettings(_Section):
    """`[bot]`: time zone and default language."""

    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'"{value}" is not a known time zone (e.g. "Asia/Shanghai")') from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


class DatabaseSettings(_Section):
    """`[database]`: where the data lives."""

    url: str = "sqlite+aiosqlite:///zhiban.db"
    busy_timeout: Duration = timedelta(seconds=5)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class TelegramSettings(_Section):
    """`[telegram]`: how the bot reaches the Bot API and receives updates."""

    api_base_url: str = "https://api.telegram.org/bot"
    api_file_url: str = "https://api.telegram.org/file/bot"
    bot_username: str = ""
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_path: str = "telegram"
    messages_per_second: float = Field(default=30.0, gt=0)
    group_messages_per_minute: float = Field(default=20.0, gt=0)
    chat_messages_per_second: float = Field(default=1.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    update_workers: int = Field(default=8, ge=1, le=64)
    # Reaching Telegram (mainland China blocks it): every Bot API call goes through this proxy.
    proxy: str = ""

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str) -> str:
        check_proxy_url(value)
        return value

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> TelegramSettings:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError('webhook_url: required when mode is "webhook"')
        return self


class OpsSettings(_Section):
    """`[ops]`: the HTTP port for /healthz, /readyz and /metrics (port 0 turns it off)."""

    listen: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)

    @field_validator("listen")
    @classmethod
    def _an_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME_RE.match(value):
                raise ValueError(
                    f'"{value}" is not an address to listen on (e.g. "127.0.0.1" or "0.0.0.0")'
                ) from None
        return value


class WebSettings(_Section):
    """`[web]`: the acknowledge link's public address and how long a link stays valid."""

    # Where people's browsers reach the ops port's /a/ pages (through a reverse proxy);
    # empty: pages carry no link.
    public_url: str = ""
    link_valid_for: Duration = timedelta(hours=24)

    @field_validator("public_url")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError('write it like "https://duty.example.edu.cn" (http or https, a host)')
        try:
            parts.port  # noqa: B018 - reading it checks it
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("a public address has no query, fragment or password")
        return value.rstrip("/")

    @field_validator("link_valid_for")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= LONGEST_LINK_VALIDITY:
            raise ValueError("must be from 1m to 30d")
        return value


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def check_proxy_url(value: str) -> None:
    """Refuse a proxy URL without a known scheme, a host and a port; never echo its password."""
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in PROXY_SCHEMES or "://" not in value:
        raise ValueError(
            'write it like "http://host:port" or "socks5://user:password@host:port" '
            f"(schemes: {', '.join(PROXY_SCHEMES)})"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("the host is missing")
    if port is None or port == 0:
        raise ValueError("the port is missing (e.g. :1080 or :8080)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy address has no path; write it like http://host:port")


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAIL_ADDRESS_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]+$")
MAX_MAIL_ADDRESS = 254


def is_mail_address(value: str) -> bool:
    """Whether this is one plain address like desk@edu.example.cn (RFC 5321's 254 at most)."""
    return len(value) <= MAX_MAIL_ADDRESS and _MAIL_ADDRESS_RE.match(value) is not None


def check_mail_address(value: str) -> str:
    """Refuse anything but one plain address; return it without surrounding blanks."""
    address = value.strip()
    if not is_mail_address(address):
        raise ValueError(f'"{value}" is not an e-mail address (e.g. "desk@edu.example.cn")')
    return address


class EmailSettings(_Section):
    """`[email]`: the SMTP server pages are mailed through; absent, e-mail is off."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    user: str = ""
    # The name of the environment variable that holds the password, never the password itself.
    password_env: str = ""
    sender: str = Field(alias="from")
    starttls: bool = True
    use_tls: bool = False
    timeout: Duration = timedelta(seconds=30)
    per_minute: int = Field(default=60, ge=1, le=6000)

    @field_validator("host")
    @classmethod
    def _a_host(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME_RE.match(value):
                raise ValueError(
                    f'"{value}" is not a host name or address (e.g. "smtp.exmail.qq.com")'
                ) from None
        return value

    @field_validator("password_env")
    @classmethod
    def _an_env_name(cls, value: str) -> str:
        if value and not _ENV_NAME_RE.match(value):
            raise ValueError(
                f'"{value}" is not the name of an environment variable '
                f'(e.g. "{EMAIL_PASSWORD_ENV}"); the password itself never goes in the file'
            )
        return value

    @field_validator("sender")
    @classmethod
    def _an_address(cls, value: str) -> str:
        # "值班系统 <zhiban@edu.example.cn>" shows a name in the mail app; the address is checked.
        text = value.strip()
        if text.endswith(">") and "<" in text:
            name, _, address = text[:-1].rpartition("<")
            if not name.strip() or any(c in name for c in '\r\n"<>'):
                raise ValueError(
                    f'"{value}" is not a sender; write "zhiban@edu.example.cn" or '
                    '"值班系统 <zhiban@edu.example.cn>"'
                )
            check_mail_address(address)
            return text
        return check_mail_address(text)

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if self.use_tls and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError(
                "starttls: set starttls = false with use_tls = true (implicit TLS, port 465)"
            )
        if self.user and not self.password_env:
            raise ValueError(
                f"password_env: required with user; name the environment variable that holds "
                f'the password (e.g. "{EMAIL_PASSWORD_ENV}")'
            )
        return self


class InviteSettings(_Section):
    """`[invites]`: one-time join links, and how many an admin may issue in the chat."""

    valid_for: Duration = timedelta(days=7)
    per_person_per_hour: int = Field(default=5, ge=1)
    per_admin_per_hour: int = Field(default=60, ge=1)


class ConversationSettings(_Section):
    """`[conversations]`: how long an unfinished draft waits, and when its person is asked."""

    timeout: Duration = timedelta(minutes=30)
    prompt_before: Duration = timedelta(minutes=5)

    @field_validator("timeout", "prompt_before")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @model_validator(mode="after")
    def _prompt_fits(self) -> ConversationSettings:
        if self.prompt_before >= self.timeout:
            raise ValueError("prompt_before: must be shorter than timeout")
        return self


class ShiftSettings(_Section):
    """`[shifts]`: clock-in window and missed-shift paging."""

    clock_in_early: Duration = timedelta(minutes=30)
    remind_before: Duration = timedelta(hours=1)
    remind_after: Duration = timedelta(minutes=5)
    page_after: Duration = timedelta(minutes=15)
    escalate_after: Duration = timedelta(minutes=30)
    clock_out_grace: Duration = timedelta(minutes=30)
    max_location_accuracy_m: float = Field(default=100.0, gt=0)
    require_live_location: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ShiftSettings:
        if not self.remind_after <= self.page_after <= self.escalate_after:
            raise ValueError("remind_after <= page_after <= escalate_after must hold")
        return self


_SPAN_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_span(value: object) -> tuple[time, timedelta]:
    """Turn "08:00-20:00" into (start, length); an end at or before the start runs overnight."""
    if isinstance(value, tuple):
        return value
    if not isinstance(value, str) or (match := _SPAN_RE.match(value.strip())) is None:
        raise ValueError(f'"{value}" is not a shift; write it like "08:00-20:00"')
    start = time(int(match.group(1)), int(match.group(2)))
    end_minutes = int(match.group(3)) * 60 + int(match.group(4))
    start_minutes = start.hour * 60 + start.minute
    length = (end_minutes - start_minutes) % (24 * 60) or 24 * 60
    return start, timedelta(minutes=length)


ShiftSpan = Annotated[tuple[time, timedelta], BeforeValidator(parse_span)]


class RotaSettings(_Section):
    """`[rota]`: the pattern `zhiban shifts generate` rotates people through."""

    post: str = "值班室"
    workday_shifts: list[ShiftSpan] = Field(
        default_factory=lambda: [parse_span("08:00-20:00"), parse_span("20:00-08:00")]
    )
    holiday_shifts: list[ShiftSpan] = Field(default_factory=lambda: [parse_span("08:00-08:00")])
    staff_roles: list[str] = Field(default_factory=lambda: ["staff"])
    leader_post: str = "带班"
    leader_shift: ShiftSpan = Field(default_factory=lambda: parse_span("08:00-08:00"))
    leader_roles: list[str] = Field(default_factory=lambda: ["duty_leader"])
    # Days off and adjusted workdays (调休) the package does not know yet (TOML, see README).
    holidays_file: Path | None = None

    @model_validator(mode="after")
    def _distinct_shifts(self) -> RotaSettings:
        for name in ("workday_shifts", "holiday_shifts"):
            starts = [start for start, _length in getattr(self, name)]
            if not starts:
                raise ValueError(f"{name}: name at least one shift")
            if len(set(starts)) != len(starts):
                raise ValueError(f"{name}: two shifts start at the same time")
            if self.leader_post == self.post and self.leader_shift[0] in starts:
                raise ValueError("leader_post: must differ from post when shifts start together")
        return self

    @field_validator("staff_roles", "leader_roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = [role for role in value if role not in ROLE_KEYS]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLE_KEYS)}")
        if not value:
            raise ValueError("name at least one role")
        return value


class CheckinSettings(_Section):
    """`[checkins]`: safety check-in rounds."""

    times: list[ClockTime] = Field(default_factory=lambda: [time(9, 0), time(21, 0)])
    answer_within: Duration = timedelta(minutes=30)
    remind_after: Duration = timedelta(minutes=15)


class DailyReportSettings(_Section):
    """`[daily_report]`: the school's daily safety report (日报/零报告)."""

    deadline: ClockTime = time(17, 0)
    escalate_after: Duration = timedelta(hours=1)
    # The prompt to the school's duty leader and principal goes out this long before the deadline.
    prompt_before: Duration = timedelta(hours=2)

    @model_validator(mode="after")
    def _same_day(self) -> DailyReportSettings:
        since_midnight = timedelta(hours=self.deadline.hour, minutes=self.deadline.minute)
        if not timedelta(0) < self.prompt_before <= since_midnight:
            raise ValueError(
                "prompt_before: must be positive and no longer than the deadline's time of day "
                "(the prompt goes out on the report's own day)"
            )
        if self.escalate_after <= timedelta(0):
            raise ValueError("escalate_after: must be positive")
        return self


class DigestSettings(_Section):
    """`[digest]`: the leaders' daily digest."""

    time: ClockTime = time(8, 0)
    # false: no digest is planned (those already planned still go out).
    enabled: bool = True


_MONTH_DAY_RE = re.compile(r"^(\d\d)-(\d\d)$")


def parse_month_day(value: object) -> tuple[int, int]:
    """Turn "09-01" into (9, 1); any year's calendar must have the day (so no "02-29")."""
    if isinstance(value, tuple):
        return value
    if not isinstance(value, str) or (match := _MONTH_DAY_RE.match(value.strip())) is None:
        raise ValueError(f'"{value}" is not a month and day; write it like "09-01"')
    month, day = int(match.group(1)), int(match.group(2))
    try:
        date(2027, month, day)  # a common year: 02-29 would not start a term every year
    except ValueError:
        raise ValueError(f'"{value}" is not a day of every year\'s calendar') from None
    return month, day


MonthDay = Annotated[tuple[int, int], BeforeValidator(parse_month_day)]


class SummarySettings(_Section):
    """`[summary]`: the leaders' summaries (/summary, zhiban report)."""

    # Month-days on which a school term starts; `/summary term` counts from the latest one.
    term_starts: list[MonthDay] = Field(default_factory=lambda: [(2, 15), (9, 1)], min_length=1)

    @field_validator("term_starts")
    @classmethod
    def _distinct(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if len(set(value)) != len(value):
            raise ValueError("the same month-day is given twice")
        return sorted(value)


class EscalationStep(_Section):
    """One step of an escalation policy: page these roles at this level after a delay."""

    after: Duration
    roles: list[str] = Field(min_length=1)
    level: Level = Level.UNIT
    repeat: int = Field(default=0, ge=0, le=20)
    every: Duration = timedelta(minutes=5)
    # One-way channels (`[[channels]]` names) that also get this step's pages.
    channels: list[str] = Field(default_factory=list)

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = [role for role in value if role not in ROLE_KEYS]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLE_KEYS)}")
        return value


class EscalationPolicy(_Section):
    """`[escalation.<severity>]`: reporting deadline and paging steps."""

    report_deadline: Duration | None = None
    forward_margin: Duration = timedelta(minutes=10)
    steps: list[EscalationStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _margin_fits(self) -> EscalationPolicy:
        if self.report_deadline is not None and self.forward_margin >= self.report_deadline:
            raise ValueError("forward_margin must be shorter than report_deadline")
        return self


_CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ChannelSettings(_Section):
    """`[[channels]]`: a group robot that pages at some units (and steps naming it) also go to."""

    name: str
    kind: Literal["wecom", "dingtalk", "feishu"]
    url: str
    # The environment variable holding the robot's signing secret (empty: the robot signs nothing).
    secret_env: str = ""
    # Pages at these units (by code; not at the units below them) also go to this channel.
    units: list[str] = Field(default_factory=list)
    # The platform's limit for one robot: about 20 messages a minute.
    per_minute: int = Field(default=20, ge=1, le=600)

    @field_validator("name")
    @classmethod
    def _a_name(cls, value: str) -> str:
        if not _CHANNEL_NAME_RE.match(value):
            raise ValueError(
                f'"{value}" is not a channel name: lowercase letters, digits, "-" and "_", '
                'at most 40 (e.g. "county-dingtalk")'
            )
        return value

    @field_validator("url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("write the robot's webhook address, https://…")
        return value

    @field_validator("secret_env")
    @classmethod
    def _an_env_name(cls, value: str) -> str:
        if value and not _ENV_NAME_RE.match(value):
            raise ValueError(f'"{value}" is not an environment variable name')
        return value

    @field_validator("units")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        if any(not code.strip() for code in value):
            raise ValueError("a unit code is empty")
        return [code.strip() for code in value]


def channel_secret_problems(
    channels: list[ChannelSettings], environ: Mapping[str, str]
) -> list[str]:
    """One line per channel whose secret_env names a variable that is not set."""
    return [
        f"channels[{index}].secret_env: {channel.secret_env} is not set "
        f"(the signing secret of {channel.name})"
        for index, channel in enumerate(channels)
        if channel.secret_env and not environ.get(channel.secret_env)
    ]


def _default_policies() -> dict[Severity, EscalationPolicy]:
    unit_first = EscalationStep(
        after=timedelta(0), roles=["duty_leader", "principal"], repeat=2, every=timedelta(minutes=5)
    )
    return {
        Severity.ESPECIALLY_SERIOUS: EscalationPolicy(
            report_deadline=timedelta(hours=1),
            forward_margin=timedelta(minutes=10),
            steps=[
                unit_first,
                EscalationStep(after=timedelta(minutes=5), roles=["officer"], level=Level.PARENT),
                EscalationStep(after=timedelta(minutes=5), roles=["desk"], level=Level.COUNTY),
            ],
        ),
        Severity.SERIOUS: EscalationPolicy(
            report_deadline=timedelta(hours=1),
            forward_margin=timedelta(minutes=10),
            steps=[
                unit_first,
                EscalationStep(after=timedelta(minutes=10), roles=["officer"], level=Level.PARENT),
                EscalationStep(after=timedelta(minutes=15), roles=["desk"], level=Level.COUNTY),
            ],
        ),
        Severity.LARGE: EscalationPolicy(
            steps=[
                EscalationStep(after=timedelta(0), roles=["duty_leader"], repeat=1),
                EscalationStep(after=timedelta(minutes=15), roles=["principal"]),
                EscalationStep(after=timedelta(minutes=30), roles=["officer"], level=Level.PARENT),
            ],
        ),
        Severity.GENERAL: EscalationPolicy(
            steps=[
                EscalationStep(after=timedelta(0), roles=["duty_leader"]),
                EscalationStep(after=timedelta(minutes=30), roles=["principal"]),
            ],
        ),
    }


class Settings(_Section):
    """The whole configuration, plus the secrets read from the environment."""

    bot: BotSettings = Field(default_factory=BotSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    invites: InviteSettings = Field(default_factory=InviteSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    shifts: ShiftSettings = Field(default_factory=ShiftSettings)
    rota: RotaSettings = Field(default_factory=RotaSettings)
    checkins: CheckinSettings = Field(default_factory=CheckinSettings)
    daily_report: DailyReportSettings = Field(default_factory=DailyReportSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    summary: SummarySettings = Field(default_factory=SummarySettings)
    escalation: dict[Severity, EscalationPolicy] = Field(default_factory=_default_policies)
    channels: list[ChannelSettings] = Field(default_factory=list)
    # Absent `[email]`: pages are not mailed.
    email: EmailSettings | None = None
    token: str | None = Field(default=None, exclude=True, repr=False)
    webhook_secret: str | None = Field(default=None, exclude=True, repr=False)
    link_secret: str | None = Field(default=None, exclude=True, repr=False)
    # Read from the variable `[email] password_env` names.
    email_password: str | None = Field(default=None, exclude=True, repr=False)

    @field_validator("escalation", mode="after")
    @classmethod
    def _every_severity(
        cls, value: dict[Severity, EscalationPolicy]
    ) -> dict[Severity, EscalationPolicy]:
        # A file that configures some severities keeps the defaults for the others.
        return {**_default_policies(), **value}

    @field_validator("channels", mode="after")
    @classmethod
    def _unique_names(cls, value: list[ChannelSettings]) -> list[ChannelSettings]:
        seen: set[str] = set()
        for channel in value:
            if channel.name in seen:
                raise ValueError(f'two channels are named "{channel.name}"')
            if channel.name == "email":  # the channel of `[email]` (bot/channels/registry.py)
                raise ValueError('"email" is the name of [email]\'s channel; name the robot apart')
            seen.add(channel.name)
        return value

    @model_validator(mode="after")
    def _step_channels_exist(self) -> Settings:
        names = {channel.name for channel in self.channels}
        for severity, policy in self.escalation.items():
            for index, step in enumerate(policy.steps):
                for name in step.channels:
                    if name not in names:
                        raise ValueError(
                            f"escalation.{severity.value}.steps[{index}].channels: "
                            f'no [[channels]] table is named "{name}"'
                        )
        return self


def _format_location(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        else:
            key += f".{part}" if key else part
    return key


_NAMED_RE = re.compile(r"^[a-z_.]+: ")


def _problems(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if loc and loc[-1] == "[key]":
            lines.append(f"{_format_location(loc[:-1])}: unknown key")
            continue
        key = _format_location(loc)
        if item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
            continue
        message = item["msg"].removeprefix("Value error, ")
        if _NAMED_RE.match(message):
            # A section-level check names the field itself ("webhook_url: required ...").
            lines.append(f"{key}.{message}" if key else message)
        else:
            lines.append(f"{key}: {message}" if key else message)
    return lines


def settings_from_mapping(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Settings:
    """Validate a parsed TOML mapping and attach the secrets from the environment."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    for section in ("telegram",):
        if isinstance(data.get(section), Mapping) and "token" in data[section]:
            problems.append(f"{section}.token: do not keep the token in a file; set {TOKEN_ENV}")
    email = data.get("email")
    if isinstance(email, Mapping) and "password" in email:
        problems.append(
            "email.password: do not keep the password in a file; name the environment variable "
            f'that holds it as password_env (e.g. password_env = "{EMAIL_PASSWORD_ENV}")'
        )
    password_env = email.get("password_env") if isinstance(email, Mapping) else None
    if problems:
        raise ConfigError(problems)
    try:
        return Settings.model_validate(
            {
                **data,
                "token": env.get(TOKEN_ENV) or None,
                "webhook_secret": env.get(WEBHOOK_SECRET_ENV) or None,
                "link_secret": env.get(LINK_SECRET_ENV) or None,
                "email_password": (
                    env.get(password_env) or None if isinstance(password_env, str) else None
                ),
            }
        )
    except ValidationError as error:
        raise ConfigError(_problems(error)) from None


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config.toml file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror})"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML ({error})"]) from None
    return settings_from_mapping(data, environ)


def resolve_config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """Pick the config file: --config, else $ZHIBAN_CONFIG, else ./config.toml."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH
