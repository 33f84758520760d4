"""The configured one-way channels, built once at start: `[[channels]]` name → Channel."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from bot.channels import Channel
from bot.clock import Clock
from bot.config import ConfigError, Settings, channel_secret_problems

# The kinds that sign each request with a timestamp (their clients take `clock=`).
SIGNED = frozenset({"dingtalk", "feishu"})
# The name `[email]` is registered under (bot/services/escalation/channels.py EMAIL_CHANNEL).
EMAIL = "email"

# Each kind's client: its module under bot/channels and its class, built as
# `Class(name, url, secret, per_minute)` (bot/channels/wecom.py, dingtalk.py, feishu.py).
CLIENTS: Mapping[str, tuple[str, str]] = {
    "wecom": ("bot.channels.wecom", "WeComRobot"),
    "dingtalk": ("bot.channels.dingtalk", "DingTalkRobot"),
    "feishu": ("bot.channels.feishu", "FeishuRobot"),
}


def build(
    settings: Settings, env: Mapping[str, str], *, clock: Clock | None = None
) -> dict[str, Channel]:
    """Build every `[[channels]]` table's client, and `[email]`'s as "email" when configured.

    A secret missing from `env` is a ConfigError holding one line per channel whose
    `secret_env` is not set, naming the variable.
    """
    problems = channel_secret_problems(settings.channels, env)
    if problems:
        raise ConfigError(problems)
    built: dict[str, Channel] = {}
    for index, config in enumerate(settings.channels):
        module_name, class_name = CLIENTS[config.kind]
        try:
            client = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            raise ConfigError(
                [f"channels[{index}].kind: this installation has no {config.kind} client"]
            ) from None
        secret = env.get(config.secret_env) if config.secret_env else None
        # A signature carries the time: the injected clock's (a test's moved clock too).
        timed = {"clock": clock} if clock is not None and config.kind in SIGNED else {}
        built[config.name] = client(config.name, config.url, secret, config.per_minute, **timed)
    if settings.email is not None:  # aiosmtplib loads only where e-mail is configured
        from bot.channels.email import email_channel

        mail = email_channel(settings, clock=clock)
    else:
        mail = None
    if mail is not None:  # config.py keeps "email" from naming a [[channels]] table
        built[EMAIL] = mail
    return built
