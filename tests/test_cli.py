"""The `zhiban` command: one clear line and a non-zero exit for every failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def zhiban(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZHIBAN_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_config_prints_ok_for_the_shipped_file() -> None:
    result = zhiban("check-config", "config.toml")
    assert (result.returncode, result.stdout.strip()) == (0, "OK")


def test_check_config_names_a_misspelt_key_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "config.toml").read_text().replace("page_after", "page_afterr"))
    result = zhiban("check-config", str(bad))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == ["shifts.page_afterr: unknown key"]


def test_config_flag_is_accepted_before_or_after_the_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[bot]\nlanguage = "fr"\n')
    for args in (("--config", str(bad), "check-config"), ("check-config", "--config", str(bad))):
        result = zhiban(*args)
        assert result.returncode == 1
        assert result.stdout.startswith("bot.language:")


def test_unknown_option_is_one_line_naming_it() -> None:
    result = zhiban("check-config", "--colour")
    assert result.returncode == 1
    assert result.stderr.strip() == "zhiban: unknown option or argument: --colour"


def test_run_without_a_token_says_how_to_get_one(tmp_path: Path) -> None:
    result = zhiban("run", cwd=tmp_path, env={"ZHIBAN_CONFIG": str(ROOT / "config.toml")})
    assert result.returncode == 1
    assert "ZHIBAN_TELEGRAM_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/z.db"\n[bot]\nlanguage = "en"\n'
    )
    result = zhiban("db", "upgrade", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "The database is at revision 0001."
    assert (tmp_path / "z.db").exists()
