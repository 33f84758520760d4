"""config.toml is validated at start, with one line per problem naming the key."""

from __future__ import annotations

import re
import tomllib
from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.config import (
    ConfigError,
    Severity,
    load_settings,
    parse_duration,
    resolve_config_path,
    settings_from_mapping,
)

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_is_valid_and_equals_the_defaults() -> None:
    shipped = load_settings(ROOT / "config.toml", environ={})
    assert shipped == settings_from_mapping({}, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1.5)),
        ("7d", timedelta(days=7)),
    ],
)
def test_durations_are_written_like_90s_10m_1h(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "1x", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"bot": {"timzone": "Asia/Shanghai"}}, "bot.timzone: unknown key"),
        ({"colour": {}}, "colour: unknown key"),
        ({"bot": {"timezone": "Mars/Base"}}, 'bot.timezone: "Mars/Base" is not a known time zone'),
        ({"bot": {"language": "fr"}}, "bot.language:"),
        ({"shifts": {"page_after": "soon"}}, 'shifts.page_after: "soon" is not a duration'),
        ({"checkins": {"times": ["25:00"]}}, 'checkins.times[0]: "25:00" is not a time of day'),
        ({"database": {"url": "mysql://x"}}, "database.url: must start with"),
        ({"telegram": {"mode": "webhook"}}, "telegram.webhook_url: required"),
        ({"telegram": {"token": "1:x"}}, "telegram.token: do not keep the token in a file"),
        ({"conversations": {"timeout": "0s"}}, "conversations.timeout: must be longer than zero"),
        ({"ops": {"port": 70000}}, "ops.port: Input should be less than or equal to 65535"),
        ({"ops": {"port": -1}}, "ops.port: Input should be greater than or equal to 0"),
        ({"ops": {"listen": "local host"}}, 'ops.listen: "local host" is not an address'),
        (
            {"conversations": {"prompt_before": "-5m"}},
            'conversations.prompt_before: "-5m" is not a duration',
        ),
        (
            {"conversations": {"timeout": "10m", "prompt_before": "10m"}},
            "conversations.prompt_before: must be shorter than timeout",
        ),
        (
            {"daily_report": {"prompt_before": "0s"}},
            "daily_report.prompt_before: must be positive and no longer than the deadline's",
        ),
        (
            {"daily_report": {"deadline": "01:00", "prompt_before": "2h"}},
            "daily_report.prompt_before: must be positive and no longer than the deadline's",
        ),
        (
            {"daily_report": {"escalate_after": "0s"}},
            "daily_report.escalate_after: must be positive",
        ),
        (
            {"summary": {"term_starts": ["9-1"]}},
            'summary.term_starts[0]: "9-1" is not a month and day; write it like "09-01"',
        ),
        (
            {"summary": {"term_starts": ["02-29"]}},
            'summary.term_starts[0]: "02-29" is not a day of every year\'s calendar',
        ),
        ({"summary": {"term_starts": []}}, "summary.term_starts:"),
        (
            {"summary": {"term_starts": ["09-01", "09-01"]}},
            "summary.term_starts: the same month-day is given twice",
        ),
        ({"email": {"from": "a@b.cn"}}, "email.host: Field required"),
        ({"email": {"host": "smtp.b.cn", "from": "desk"}}, 'email.from: "desk" is not an e-mail'),
        (
            {"email": {"host": "smtp.b.cn", "from": "a@b.cn", "password": "hunter2"}},
            "email.password: do not keep the password in a file",
        ),
        (
            {"email": {"host": "smtp.b.cn", "from": "a@b.cn", "user": "a@b.cn"}},
            "email.password_env: required with user",
        ),
        (
            {"email": {"host": "smtp.b.cn", "from": "a@b.cn", "password_env": "my password"}},
            'email.password_env: "my password" is not the name of an environment variable',
        ),
        (
            {"email": {"host": "smtp.b.cn", "from": "a@b.cn", "use_tls": True, "starttls": True}},
            "email.starttls: set starttls = false with use_tls = true",
        ),
        ({"email": {"host": "smtp b", "from": "a@b.cn"}}, 'email.host: "smtp b" is not a host'),
        ({"email": {"host": "smtp.b.cn", "from": "a@b.cn", "port": 0}}, "email.port:"),
        (
            {"email": {"host": "smtp.b.cn", "from": "a@b.cn", "timeout": "0s"}},
            "email.timeout: must be longer than zero",
        ),
        ({"email": {"host": "smtp.b.cn", "from": "a@b.cn", "tls": True}}, "email.tls: unknown key"),
        (
            {"escalation": {"urgent": {"steps": [{"after": "0s", "roles": ["desk"]}]}}},
            "escalation.urgent: unknown key",
        ),
        (
            {"escalation": {"serious": {"steps": [{"after": "0s", "roles": ["boss"]}]}}},
            "escalation.serious.steps[0].roles: unknown role 'boss'",
        ),
    ],
)
def test_each_problem_names_its_key(data: dict[str, object], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, environ={})
    assert any(problem.startswith(line) for problem in caught.value.problems), caught.value.problems


def test_token_comes_from_the_environment_only() -> None:
    settings = settings_from_mapping({}, environ={"ZHIBAN_TELEGRAM_TOKEN": "123:abc"})
    assert settings.token == "123:abc"
    assert "123:abc" not in repr(settings)


def test_email_is_off_without_its_table_and_its_password_comes_from_the_environment() -> None:
    assert settings_from_mapping({}, environ={}).email is None
    settings = settings_from_mapping(
        {
            "email": {
                "host": "smtp.exmail.qq.com",
                "user": "zhiban@example.edu.cn",
                "password_env": "COUNTY_SMTP_PASSWORD",
                "from": "值班系统 <zhiban@example.edu.cn>",
            }
        },
        environ={"COUNTY_SMTP_PASSWORD": "s3cret"},
    )
    assert settings.email is not None
    assert (settings.email.port, settings.email.starttls, settings.email.use_tls) == (
        587,
        True,
        False,
    )
    assert settings.email.sender == "值班系统 <zhiban@example.edu.cn>"
    assert settings.email.timeout == timedelta(seconds=30)
    assert settings.email_password == "s3cret"
    assert "s3cret" not in repr(settings)


def test_the_commented_email_example_in_config_toml_is_valid() -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8").split("# [email]\n")[1]
    keys = [line[2:] for line in text.splitlines() if re.match(r"^# [a-z_]+ = ", line)]
    data = tomllib.loads("\n".join(["[email]", *keys]))
    settings = settings_from_mapping(data, environ={"ZHIBAN_SMTP_PASSWORD": "x"})
    assert settings.email is not None and settings.email.port == 587
    assert len(keys) == len(type(settings.email).model_fields)


def test_a_file_may_configure_some_severities_and_keep_the_rest() -> None:
    settings = settings_from_mapping(
        {"escalation": {"general": {"steps": [{"after": "1m", "roles": ["desk"]}]}}}, environ={}
    )
    assert settings.escalation[Severity.GENERAL].steps[0].roles == ["desk"]
    assert settings.escalation[Severity.SERIOUS].report_deadline == timedelta(hours=1)
    assert settings.checkins.times == [time(9), time(21)]


def test_config_path_comes_from_flag_then_environment_then_cwd() -> None:
    assert resolve_config_path("a.toml", {"ZHIBAN_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"ZHIBAN_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("config.toml")


def test_missing_and_malformed_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[bot\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)
