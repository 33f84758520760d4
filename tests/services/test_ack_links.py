"""Acknowledge-link tokens: signed, bound to a page and a person, expiring, short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import ConfigError, WebSettings, settings_from_mapping
from bot.services.ack_links import LinkToken, Refusal, link_for, make_token, read_token

SECRET = "s" * 40
NOW = datetime(2026, 12, 2, 0, 15, tzinfo=UTC)
NONCE = bytes(range(8))


def token(**changes: object) -> str:
    values: dict[str, object] = {
        "page_id": 4321,
        "person_id": 77,
        "expires_at": NOW + timedelta(hours=24),
        "nonce": NONCE,
    }
    values.update(changes)
    return make_token(SECRET, **values)  # type: ignore[arg-type]


def test_a_token_reads_back_its_page_person_and_nonce_and_fits_a_robot_message() -> None:
    made = token()
    assert len(made) == 50 and made.isascii()
    assert read_token(SECRET, made, NOW) == LinkToken(
        4321, 77, NONCE.hex(), NOW + timedelta(hours=24)
    )


@pytest.mark.parametrize("position", [0, 10, 25, 49])
def test_a_token_changed_anywhere_is_tampered(position: int) -> None:
    made = token()
    changed = made[:position] + ("A" if made[position] != "A" else "B") + made[position + 1 :]
    assert read_token(SECRET, changed, NOW) in (Refusal.TAMPERED, Refusal.MALFORMED)


def test_another_secret_or_another_page_in_the_payload_is_tampered() -> None:
    assert read_token("t" * 40, token(), NOW) == Refusal.TAMPERED
    # The payload of page 4322 with the tag of page 4321: the tag covers every field.
    other = token(page_id=4322)
    assert read_token(SECRET, other[:28] + token()[28:], NOW) == Refusal.TAMPERED


def test_a_token_expires_at_its_moment() -> None:
    made = token(expires_at=NOW + timedelta(minutes=1))
    assert isinstance(read_token(SECRET, made, NOW + timedelta(seconds=59)), LinkToken)
    assert read_token(SECRET, made, NOW + timedelta(minutes=1)) == Refusal.EXPIRED


@pytest.mark.parametrize(
    "junk", ["", "abc", "x" * 49, "x" * 51, "x" * 5000, "é" * 50, "a/b" + "x" * 47, "=" * 50]
)
def test_junk_is_malformed(junk: str) -> None:
    assert read_token(SECRET, junk, NOW) == Refusal.MALFORMED


def test_link_for_needs_a_public_address_and_a_secret() -> None:
    web = WebSettings(public_url="https://duty.example.edu.cn/", link_valid_for="2h")
    link = link_for(web, SECRET, 9, 3, NOW)
    assert link is not None and link.startswith("https://duty.example.edu.cn/a/")
    found = read_token(SECRET, link.rsplit("/", 1)[1], NOW)
    assert isinstance(found, LinkToken)
    assert (found.page_id, found.person_id, found.expires_at) == (9, 3, NOW + timedelta(hours=2))
    assert link_for(WebSettings(), SECRET, 9, 3, NOW) is None
    assert link_for(web, None, 9, 3, NOW) is None
    # Every link has its own nonce: spending one leaves the others usable.
    assert link != link_for(web, SECRET, 9, 3, NOW)


def test_web_settings_name_a_bad_address_and_the_secret_comes_from_the_environment() -> None:
    for bad in ("duty.example.edu.cn", "ftp://x.cn", "https://x.cn/?a=1", "https://u:p@x.cn"):
        with pytest.raises(ConfigError) as raised:
            settings_from_mapping({"web": {"public_url": bad}}, environ={})
        assert raised.value.problems[0].startswith("web.public_url: ")
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({"web": {"link_valid_for": "0s"}}, environ={})
    assert raised.value.problems == ["web.link_valid_for: must be from 1m to 30d"]
    settings = settings_from_mapping(
        {"web": {"public_url": "https://x.cn/zhiban/"}}, environ={"ZHIBAN_LINK_SECRET": SECRET}
    )
    assert settings.web.public_url == "https://x.cn/zhiban"
    assert settings.link_secret == SECRET
    assert "link_secret" not in settings.model_dump()


def test_doctor_names_a_missing_or_short_link_secret_only_when_links_are_on() -> None:
    from bot.doctor import Status, _links
    from bot.i18n import translator

    tr = translator("en")
    web = {"web": {"public_url": "https://duty.example.edu.cn"}}
    assert _links(settings_from_mapping({}, environ={}), tr) == []
    for environ in ({}, {"ZHIBAN_LINK_SECRET": "short"}):
        [finding] = _links(settings_from_mapping(web, environ=environ), tr)
        assert finding.status == Status.FAIL
        assert finding.text.startswith("Acknowledge links: set ZHIBAN_LINK_SECRET to a secret")
    [finding] = _links(settings_from_mapping(web, environ={"ZHIBAN_LINK_SECRET": SECRET}), tr)
    assert finding.line() == "OK    Acknowledge links: https://duty.example.edu.cn/a/…"


@pytest.mark.parametrize(("secret", "said"), [(None, "is not set"), ("short", "is too short")])
def test_run_refuses_links_without_a_long_enough_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None, said: str
) -> None:
    from bot.cli import CommandError, _run

    monkeypatch.setenv("ZHIBAN_TELEGRAM_TOKEN", "123:abc")
    environ = {"ZHIBAN_LINK_SECRET": secret} if secret else {}
    settings = settings_from_mapping(
        {"web": {"public_url": "https://duty.example.edu.cn"}}, environ=environ
    )
    with pytest.raises(CommandError) as raised:
        _run(settings)
    assert str(raised.value).startswith(f"ZHIBAN_LINK_SECRET {said}: [web] public_url needs")
