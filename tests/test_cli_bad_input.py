"""Every `zhiban` command given bad input: one line, exit 1, and the database unchanged."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run one command in-process: its exit status, stdout and stderr."""
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        status = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def table_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.fixture
def district(
    tmp_path: Path, sqlite_template: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path]:
    """A config in English on a database holding the sample district; the files to spoil."""
    database = tmp_path / "z.db"
    shutil.copyfile(sqlite_template, database)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{database}"\n[bot]\nlanguage = "en"\n'
        '[telegram]\nbot_username = "zhiban_demo_bot"\n'
    )
    assert run(capsys, "roster", "sample", "--config", str(config))[0] == 0
    return config, database


# aiosqlite's worker thread for a connection that failed to open reports back after the
# command's event loop has closed; the command itself has already printed its one line.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_each_command_refuses_bad_input_in_one_line_and_changes_nothing(
    district: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, database = district
    text_as_xlsx = tmp_path / "bad.xlsx"
    text_as_xlsx.write_text("this is not a workbook\n")
    old_xls = tmp_path / "old.xls"
    old_xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500))
    books = tmp_path / "books"
    books.mkdir()
    for name in ("a.xlsx", "b.xlsx"):
        shutil.copyfile(text_as_xlsx, books / name)
    templates = tmp_path / "templates"
    assert run(capsys, "roster", "template", str(templates), "--config", str(config))[0] == 0
    holidays = tmp_path / "holidays.toml"
    holidays.write_text('"2027" = { off = ["2027-02-30"] }\n')
    with_holidays = tmp_path / "holidays-config.toml"
    with_holidays.write_text(config.read_text() + f'[rota]\nholidays_file = "{holidays}"\n')
    no_database = tmp_path / "no-database.toml"
    no_database.write_text('[database]\nurl = "sqlite+aiosqlite:////nonexistent/dir/z.db"\n')
    before = table_counts(database)
    generate = ["shifts", "generate", "--unit", "QC"]
    cases: list[tuple[list[str], str]] = [
        (["roster", "import", "nosuch.csv"], "zhiban: no such file: nosuch.csv"),
        (["roster", "import", str(text_as_xlsx)], "bad.xlsx: not an XLSX workbook"),
        (["roster", "import", str(old_xls)], "old.xls: an old Excel .xls workbook"),
        (["roster", "import", str(books)], "holds several workbooks"),
        (["roster", "import", str(ROOT / "config.toml")], "config.toml: no roster sheet found"),
        (["roster", "template", str(templates)], "units.csv already exists; add --force"),
        (["roster", "sample"], "already holds 39 people"),
        (["roster", "deactivate", "SB01-05", "NOPE"], "unknown staff number NOPE"),
        (["roster", "export", "/proc/zhiban-nope"], "/proc/zhiban-nope"),
        (["roster", "frobnicate"], "invalid choice"),
        ([*generate, "--from", "2027-01-01", "--to", "2027-01-02"], '"2027" = { off = []'),
        ([*generate, "--from", "2026-12-05", "--to", "2026-12-01"], "is before the first day"),
        ([*generate, "--from", "tomorrow", "--to", "2026-12-01"], "'tomorrow' is not a date"),
        (
            ["shifts", "generate", "--unit", "NOPE", "--from", "2026-12-01", "--to", "2026-12-01"],
            "unknown unit NOPE",
        ),
        (["pages", "--limit", "0"], "'0' is not a positive whole number"),
        (["pages", "--status", "lost"], "invalid choice"),
        (["audit", "--since", "yesterday"], "'yesterday' is not a date"),
        (["audit", "--since", "2026-11-01", "--limit", "-5"], "not a positive whole number"),
        (["invite", "NOPE"], "unknown staff number NOPE"),
        (["invite"], "give staff numbers or --unit CODE"),
        (["invite", "--unit", "NOPE"], "unknown unit NOPE"),
        (["demo", "--language", "fr"], "invalid choice"),
        (["report", "--from", "2026-12-07", "--to", "2026-12-01"], "is before --from"),
        (["report", "--from", "2026-12-01", "--to", "2026-12-32"], "'2026-12-32' is not a date"),
        (
            ["report", "--from", "2026-12-01", "--to", "2026-12-07", "--unit", "NOPE"],
            "no unit NOPE",
        ),
        (
            ["report", "--from", "2026-12-01", "--to", "2026-12-07", "--lang", "fr"],
            "invalid choice",
        ),
        (["ical", "NOPE"], "staff number NOPE"),
        (["ical", "SB01-03", "--out", "/proc/zhiban-nope/x.ics"], "/proc/zhiban-nope"),
        (["frobnicate"], "invalid choice"),
    ]
    for argv, expected in cases:
        status, out, err = run(capsys, *argv, "--config", str(config))
        assert (status, out) == (1, ""), (argv, out, err)
        lines = err.strip().splitlines() or out.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (argv, err)
        assert "Traceback" not in err
    for argv, expected in (
        ([*generate, "--from", "2027-01-01", "--to", "2027-01-02"], "2027.off[0]"),
        (["db", "upgrade"], "database ([database] url): unable to open database file"),
        (["pages"], "unable to open database file"),
    ):
        used = with_holidays if argv[0] == "shifts" else no_database
        status, out, err = run(capsys, *argv, "--config", str(used))
        assert (status, out, len(err.strip().splitlines())) == (1, "", 1), (argv, err)
        assert expected in err
    # check-config's output is its list of problems, so it prints them on stdout.
    status, out, _ = run(capsys, "check-config", str(tmp_path / "nope.toml"))
    assert (status, out.strip()) == (1, f"{tmp_path / 'nope.toml'}: no such configuration file")
    status, out, _ = run(capsys, "check-config", str(with_holidays))
    assert (status, out.strip()) == (
        1,
        f'rota.holidays_file: {holidays}: 2027.off[0]: a list of dates like "2027-01-01" or '
        '"2027-02-06..2027-02-12"',
    )
    status, _, err = run(capsys, "pages", "--config", str(tmp_path / "nope.toml"))
    assert (status, err.strip()) == (
        1,
        f"zhiban: {tmp_path / 'nope.toml'}: no such configuration file",
    )
    assert table_counts(database) == before


def test_a_roster_refusal_is_in_the_configured_language_and_lists_every_bad_row(
    district: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, database = district
    config.write_text(config.read_text().replace('language = "en"', 'language = "zh"'))
    people = tmp_path / "名单.csv"
    people.write_bytes(
        "工号,姓名,单位,角色,电话,语言\nN1,甲,NOPE,staff,,\nN2,乙,SB01,boss,,\nN3,丙,SB01,staff,12,\n".encode(
            "gbk"
        )
    )
    before = table_counts(database)

    status, out, err = run(capsys, "roster", "import", str(people), "--config", str(config))

    assert (status, out) == (1, "")
    assert err.splitlines() == [
        "zhiban: 名册未导入，未作任何更改；共3处问题：",
        "  名单.csv 第2行，单位列：未知单位NOPE",
        "  名单.csv 第3行，角色列：未知角色boss",
        "  名单.csv 第4行，电话列：12不是电话号码",
    ]
    assert table_counts(database) == before


def test_a_closed_pipe_ends_the_demo_quietly(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZHIBAN_")}
    environment["PYTHONPATH"] = str(ROOT)  # this checkout, not whatever is installed
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--language", "en"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = [process.stdout.readline() for _ in range(3)]  # like `zhiban demo | head -3`
    process.stdout.close()
    status = process.wait(timeout=60)
    assert all(first)
    assert status in (0, 141)
    assert process.stderr.read() == b""
