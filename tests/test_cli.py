"""The `zhiban` command: one clear line and a non-zero exit for every failure."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

from openpyxl import load_workbook
from PIL import Image

from bot.migrate import head_revision

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
    assert result.stdout.strip() == f"The database is at revision {head_revision()}."
    assert (tmp_path / "z.db").exists()


def _config(tmp_path: Path, language: str = "en") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/z.db"\n[bot]\nlanguage = "{language}"\n'
    )
    return config


def test_the_sample_district_goes_only_into_an_empty_database(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = zhiban("roster", "sample", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "People: 39 new" in first.stdout
    second = zhiban("roster", "sample", "--config", str(config))
    assert (second.returncode, second.stdout, second.stderr.strip()) == (
        1,
        "",
        "zhiban: The database already holds 39 people; the sample district goes only into an "
        "empty database.",
    )


def test_roster_with_a_bad_row_exits_1_naming_row_and_column(tmp_path: Path) -> None:
    config = _config(tmp_path)
    units = tmp_path / "units.csv"
    units.write_text(
        "code,name,parent,kind,latitude,longitude,radius_m\n"
        "C,County,,county,,,\n"
        "S,School,NOPE,school,,,\n",
        encoding="utf-8",
    )
    result = zhiban("roster", "import", str(units), "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.strip() == "zhiban: units.csv row 3, column parent: unknown unit NOPE"
    export = zhiban("roster", "export", str(tmp_path / "out"), "--config", str(config))
    assert export.returncode == 0
    assert (tmp_path / "out" / "units.csv").read_text(encoding="utf-8-sig").count("\n") == 1


def test_demo_runs_offline_and_prints_the_conversation(tmp_path: Path) -> None:
    kept = tmp_path / "day"
    result = zhiban("demo", "--lang", "en", "--keep", str(kept))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[07:50] bot → 路人甲: 您尚未在值班系统登记。" in out
    assert "[07:51] bot → 吴静: Welcome, 吴静! Your account is now linked." in out
    assert "[07:53] bot → Ma Jun: Welcome, 马俊! Your account is now linked." in out
    assert "[07:55] bot → 吴静: There is no unit MY01 in your area of responsibility." in out
    assert "[07:58] bot → Ma Jun: ✅ Clocked in at 07:58: 值班室, 石坝小学" in out
    assert (
        "[08:15] bot → 冯志刚: 🚨 Post unmanned: 值班室. 彭勇 (☎ 13800000019) has not clocked in"
        in out
    )
    assert "✅ Acknowledged by 冯志刚 at 08:17." in out
    # a serious fire: acknowledged at the school, passed up by the system at 09:15, late
    assert "[08:25] bot ✎ Ma Jun: Reported: 20261201-001." in out
    assert "🕒 Happened 0 min ago (08:25) · report due by 09:25, 1 h left" in out
    assert "✅ Acknowledged by 杨光明 at 08:27." in out
    late = "🕒 Happened 50 min ago (08:25) · report due by 09:25; passed up by the system"
    for reader in ("吴静", "李秀英"):
        page = out.split(f"[09:15] bot → {reader}: 🚨 Serious incident No. 20261201-001")[1]
        assert late in page.split("[09:")[0]
    assert "[09:16] 吴静 → bot: /incident 20261201-001" in out
    assert (
        "09:15 passed up by the system to 青川县教育局: the report deadline was near; "
        "recorded late (迟报) ⚠️"
    ) in out
    # the 09:00 safety check-in: two answer, 马俊 stays silent, is reminded, his leader paged
    assert (
        "[09:00] bot → 杨光明: 🛡 Safety check-in (平安报告) for 09:00 at 石坝小学. "
        "Is everything normal? Please answer by 09:30.  [✅ All normal] [🚨 Report a problem]"
    ) in out
    assert "[09:00] bot ✎ 冯志刚: ✅ All normal: recorded at 09:00. Thank you." in out
    assert "[09:15] bot → Ma Jun: ⏰ You have not answered the 09:00 safety check-in yet." in out
    silence = out.split("[09:30] bot → 杨光明: 🚨 Check-in unanswered: 马俊 (☎ 13800000015)")[1]
    assert "✅ Acknowledged by 杨光明 at 09:32." in silence
    assert "[09:35] bot ✎ Ma Jun: ✅ All normal: recorded at 09:35, late" in silence
    assert "        ✔️ 马俊 answered late at 09:35: all normal.\n" in silence
    assert out.count("Check-in unanswered") == 3  # the page, its acknowledgement, the late answer
    # the daily safety report: 石坝小学 submits, 石坝乡红岩小学 stays silent and is named
    assert "[15:00] bot → 杨光明: 📋 Daily safety report (日报) of 石坝小学 for 12-01" in out
    assert "[15:00] bot ✎ 杨光明: Submitted: the daily report of 石坝小学 for 12-01." in out
    assert (
        "[17:00] bot → 冯志刚: 🚨 Daily safety report missing: 石坝乡红岩小学 has not submitted"
        in out
    )
    township = out.split("[18:00] bot → 吴静: 📋 Daily safety reports of 石坝乡中心校 for 12-01")[1]
    assert township.splitlines()[1:4] == [
        "        1 missing, 0 late, 1 reported, 0 nothing to report",
        "        ❌ 石坝乡红岩小学: missing",
        "        📝 石坝小学: reported",
    ]
    county = out.split("bot → 李秀英: 📋 Daily safety reports of the county for 12-01")[1]
    assert "missing: 石坝乡红岩小学" in county.split("[18:00]")[0]
    # the county desk's board during the incident: the fire first, with its school
    board = out.split("[09:17] bot → 李秀英: 📋 Duty board: 青川县教育局 (QC) · as of 09:17\n")[1]
    assert board.splitlines()[0].startswith("        🏫 schools 5 · ")
    assert board.splitlines()[2] == (
        "        🔴 石坝小学 (SB01): 🚨 Serious Fire 20261201-001, 52 min ago · 📵 unreachable 2"
    )
    # the county's DingTalk group gets the fire's page, with the desk's acknowledge link
    robot = out.split(
        "[09:15] bot → DingTalk group of 青川县教育局: 🚨 Serious incident No. 20261201-001"
    )
    robot_page = robot[1].split("\n\n— 09:16")[0]
    assert "        李秀英: http://127.0.0.1:" in robot_page and "/a/" in robot_page
    assert robot_page.rstrip().endswith("@15900000002 @13800000003 @15900000006")
    assert (
        out.index("[09:15] bot → 李秀英: 🚨") < out.index("DingTalk group") < out.index("[09:16]")
    )
    # the county desk acknowledges the fire; the township's page shows it
    desk_ack = out.split("[09:18] 李秀英 ☞ [✅ Acknowledge]\n")[1].split("— 09:30")[0]
    assert desk_ack.startswith("[09:18] bot ⇢ 李秀英: Acknowledged. Paging has stopped.")
    assert "[09:18] bot ✎ 吴静: 🚨 Serious incident No. 20261201-001" in desk_ack
    assert "✅ 青川县教育局 acknowledged: 李秀英 at 09:18." in desk_ack
    assert "✅ Acknowledged by 李秀英 at 09:18." in desk_ack
    assert out.index("[09:17]") < out.index("[09:18]") < out.index("[09:30]")
    # 09:45 马俊's follow-up with a photo reaches everyone paged, the text first; 10:30 closed
    follow = out.split("— 09:45 马俊 adds a follow-up (续报) with a photo from the kitchen —\n")[1]
    follow = follow.split("— 10:30")[0]
    assert "[09:45] Ma Jun → bot: (photo)" in follow
    assert "[09:45] bot ✎ Ma Jun: Follow-up added to 20261201-001; sent to 3 people." in follow
    for reader in ("杨光明", "吴静", "李秀英"):
        text = follow.index(f"[09:45] bot → {reader}: 📝 Follow-up (续报) to incident 20261201-001")
        assert text < follow.index(f"[09:45] bot → {reader}: (photo) 20261201-001")
    final = out.split("— 10:30 The principal closes the incident with its final report (终报) —")[1]
    final = final.split("\n\n(")[0]
    assert "[10:30] 杨光明 → bot: /final 20261201-001" in final
    assert "[10:30] 杨光明 ☞ [🏁 Close the incident]" in final
    assert (
        "[10:30] bot → 李秀英: 🏁 Final report (终报) on incident 20261201-001 from 杨光明; "
        "the incident is closed."
    ) in final
    assert "🏁 Closed with the final report by 杨光明 at 10:30." in final
    assert out.index("[09:35]") < out.index("[09:45]") < out.index("[10:30]") < out.index("[15:00]")
    # 20:02 马俊 clocks out with his duty log; 20:05 唐磊 clocks in late and reads it
    handover = out.split("— 20:02 马俊 clocks out with the duty log (值班记录) —\n")[1]
    assert "[20:02] bot ✎ Ma Jun: 👋 Clocked out at 20:02." in handover
    arrived = handover.split("[20:05] bot → 唐磊: ✅ Clocked in at 20:05: 值班室, 石坝小学")[1]
    assert arrived.splitlines()[1:5] == [
        "        You are 5 minutes late; this is recorded.",
        "        ",
        "        📋 Handover from 马俊 (12-01 20:02):",
        "        Quiet afternoon. The kitchen stays closed until tomorrow: keep pupils out of it.",
    ]
    assert out.index("[20:00] bot → 李秀英: (photo)") < out.index("[20:02]") < out.index("[20:05]")
    # the one-screen summary at the end, computed from the database
    summary = out.split("══ Summary of the day at 青川县教育局, 12-01 07:50–20:05 ══\n")[1]
    assert out.index("[20:05] bot → 唐磊: ✅") < out.index("══ Summary of the day")
    assert summary.splitlines()[:5] == [
        "What happened",
        "• 20261201-001 Serious Fire at 石坝小学, reported at 08:25 by 马俊",
        "  acknowledged: 石坝小学 (杨光明, 08:27), 青川县教育局 (李秀英, 09:18)",
        "  follow-ups: 1; closed with its final report at 10:30 by 杨光明",
        "• Check-ins: 3/16 answered, 1 late, 13 never answered",
    ]
    assert "• 20261201-001: the school's report was late (迟报)" in summary
    assert "• Shifts nobody clocked in to: 13 (石坝乡红岩小学 彭勇 08:00, " in summary
    assert "• Late clock-ins: 唐磊 20:05 (5 min)" in summary
    assert "• Check-ins answered late: 马俊 09:35" in summary
    assert "• Daily reports missing: 石坝乡红岩小学, " in summary
    assert summary.split("The one-hour rule\n")[1].splitlines()[:2] == [
        "• 20261201-001: happened 08:25, due at the levels above by 09:25",
        "  the system passed it up at 09:15 to 石坝乡中心校, 青川县教育局: recorded late (迟报)",
    ]
    assert len(summary.split("\n\nEnd of the demo.")[0].splitlines()) <= 20
    # the evening digest: the county's by unit, the late fire named, then its chart
    digest = out.split(
        "[20:00] bot → 李秀英: 📰 Daily digest of 青川县教育局, 11-30 20:00–12-01 20:00"
    )
    assert "• 20261201-001 Fire, Serious, 石坝小学 — ⚠️ reported late (迟报)" in digest[1]
    assert digest[1].index("reported late (迟报)") < digest[1].index(
        "[20:00] bot → 李秀英: (photo) 📊 青川县教育局, 11-30 20:00–12-01 20:00"
    )
    assert out.index("[09:17]") < out.index("[15:00]") < out.index("[20:00]")
    assert "Traceback" not in out + result.stderr
    # --keep: the database, transcript, chart and XLSX are kept, with a config to open them
    assert "To open the kept day with the bot, start the Bot API emulator" in out
    assert "    python -m bot.sandbox --port 8081 --user-id 7004 --user-name 杨光明\n" in out
    assert out.rstrip().endswith(
        f"ZHIBAN_TELEGRAM_TOKEN=123456:demo zhiban --config {kept.resolve() / 'config.toml'} run"
    )
    assert (kept / "transcript.txt").read_text(encoding="utf-8") == out
    with sqlite3.connect(kept / "demo.db") as db:
        numbers = db.execute("SELECT number, status FROM incidents").fetchall()
    assert numbers == [("20261201-001", "closed")]
    with Image.open(kept / "digest-chart.png") as chart:
        assert chart.format == "PNG" and chart.width > 300
    book = load_workbook(kept / "summary.xlsx")
    assert len(book.sheetnames) >= 3
    config = tomllib.loads((kept / "config.toml").read_text(encoding="utf-8"))
    assert config["database"]["url"] == f"sqlite+aiosqlite:///{kept.resolve() / 'demo.db'}"
    assert config["telegram"]["api_base_url"] == "http://127.0.0.1:8081/bot"
    assert zhiban("check-config", str(kept / "config.toml")).returncode == 0


def test_the_demo_reads_in_chinese_too() -> None:
    result = zhiban("demo")
    assert result.returncode == 0, result.stderr
    assert "🕒 发生于50分钟前（08:25） · 须于09:25前上报；系统已代为上报，记为迟报" in result.stdout
    assert "09:15 临近上报时限，系统代为上报至石坝乡中心校，记为迟报 ⚠️" in result.stdout
    assert "❌ 石坝乡红岩小学：缺报" in result.stdout
    assert "[09:17] bot → 李秀英: 📋 值班看板：青川县教育局（QC）· 09:17" in result.stdout
    assert "✅ 青川县教育局已由李秀英于09:18接报。" in result.stdout
    assert "[09:15] bot → 青川县教育局钉钉群: 🚨 重大事件 20261201-001：火灾" in result.stdout
    assert "[09:45] bot → 李秀英: 📝 马俊 对事件 20261201-001 的续报：" in result.stdout
    assert "[10:30] 杨光明 ☞ [🏁 结案]" in result.stdout
    summary = result.stdout.split("══ 青川县教育局当日小结，12-01 07:50–20:05 ══\n")[1]
    assert "  接报：石坝小学（杨光明，08:27）、青川县教育局（李秀英，09:18）" in summary
    assert "• 签到迟到：唐磊 20:05（迟到5分钟）" in summary
    assert "  系统于09:15代为上报至石坝乡中心校、青川县教育局，记为迟报" in summary
    assert summary.rstrip().endswith("演示结束。")
    assert (
        "📋 马俊的交接（12-01 20:02）：\n        下午平稳。厨房明天前仍封闭，勿让学生进入。"
        in result.stdout
    )
    assert "🔴 石坝小学（SB01）：🚨 重大火灾 20261201-001，52分钟前" in result.stdout
    assert "[20:00] bot → 李秀英: 📰 青川县教育局值班简报，11-30 20:00–12-01 20:00" in result.stdout
    assert "[20:00] bot → 李秀英: (photo) 📊 青川县教育局，11-30 20:00–12-01 20:00" in result.stdout
    assert (
        "[09:30] bot → 杨光明: 🚨 平安报告无人回复：马俊（☎13800000015）未回复09:00的平安报告"
        in (result.stdout)
    )


def test_invite_prints_one_line_per_person_and_writes_printable_qr_codes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.write_text(config.read_text() + '[telegram]\nbot_username = "zhiban_demo_bot"\n')
    assert zhiban("roster", "sample", "--config", str(config)).returncode == 0
    named = zhiban("invite", "SB01-04", "SB01-05", "--config", str(config))
    assert named.returncode == 0, named.stderr
    rows = [line.split("\t") for line in named.stdout.strip().splitlines()]
    assert [row[:2] for row in rows] == [["SB01-04", "孙小红"], ["SB01-05", "马俊"]]
    assert all(row[2].startswith("https://t.me/zhiban_demo_bot?start=") for row in rows)
    assert rows[0][2] != rows[1][2]
    sheet = tmp_path / "qr"
    unit = zhiban("invite", "--unit", "SB02", "--qr", str(sheet), "--config", str(config))
    assert unit.returncode == 0, unit.stderr
    staff = [line.split("\t")[0] for line in unit.stdout.strip().splitlines()]
    assert staff == ["SB02-01", "SB02-02", "SB02-03", "SB02-04"]
    assert (sheet / "SB02-03.png").read_bytes().startswith(b"\x89PNG")
    assert "彭勇" in (sheet / "invites.html").read_text(encoding="utf-8")


def test_invite_names_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert zhiban("roster", "sample", "--config", str(config)).returncode == 0
    no_name = zhiban("invite", "SB01-04", "--config", str(config))
    assert no_name.returncode == 1
    assert no_name.stderr.startswith("zhiban: set [telegram] bot_username in the config")
    config.write_text(config.read_text() + '[telegram]\nbot_username = "zhiban_demo_bot"\n')
    unknown = zhiban("invite", "XX-99", "--config", str(config))
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "zhiban: unknown staff number XX-99")
    both = zhiban("invite", "SB01-04", "--unit", "SB01", "--config", str(config))
    assert both.returncode == 1


def test_a_missing_import_file_or_unwritable_export_folder_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "z.db"}"\n')
    for argv, line in (
        (
            ["roster", "import", str(tmp_path / "nosuch" / "units.csv")],
            f"zhiban: 文件不存在：{tmp_path / 'nosuch' / 'units.csv'}",  # [bot] language zh
        ),
        (["roster", "export", "/proc/zhiban-nope"], "/proc/zhiban-nope: No such file"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "bot", *argv, "--config", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert line in result.stderr


def test_zhiban_report_writes_the_files_and_refuses_reversed_dates(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "z.db"}"\n')

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return zhiban("--config", str(config), *args)

    assert report("roster", "sample").returncode == 0
    out = tmp_path / "out"
    done = report(
        "report",
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-07",
        "--unit",
        "SB",
        "--out",
        str(out),
        "--lang",
        "en",
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert printed[0] == "📊 Summary: 石坝乡中心校, 2026-12-01 – 2026-12-07"
    png, xlsx = Path(printed[-2]), Path(printed[-1])
    assert png.name == "summary-SB-20261201-20261207.png" and png.parent == out
    assert Image.open(png).format == "PNG"
    assert load_workbook(xlsx).sheetnames[0] == "Incidents by category"

    reversed_dates = report("report", "--from", "2026-12-07", "--to", "2026-12-01")
    assert reversed_dates.returncode == 1
    assert reversed_dates.stderr == "zhiban: --to 2026-12-01 is before --from 2026-12-07\n"
    unknown = report("report", "--from", "2026-12-01", "--to", "2026-12-07", "--unit", "NOPE")
    assert (unknown.returncode, unknown.stderr) == (1, "zhiban: --unit: there is no unit NOPE\n")
    bad = report("report", "--from", "2026-13-01", "--to", "2026-12-07")
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1
    assert "'2026-13-01' is not a date" in bad.stderr


def test_ical_writes_a_persons_shifts_that_parse_back_and_refuses_an_unknown_staff_no(
    tmp_path: Path,
) -> None:
    import sqlite3
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from icalendar import Calendar

    config = _config(tmp_path)
    sample = ROOT / "bot" / "data" / "sample"
    files = tmp_path / "roster"
    files.mkdir()
    for name in ("units.csv", "people.csv"):
        (files / name).write_bytes((sample / name).read_bytes())
    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.now(tz).date()  # the CLI reads the system clock: shifts around today

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    (files / "shifts.csv").write_text(
        "unit,post,start,end,staff_no,kind\n"
        f"SB01,值班室,{day(-40)} 08:00,{day(-40)} 20:00,SB01-03,staff\n"
        f"SB01,值班室,{day(-1)} 08:00,{day(-1)} 20:00,SB01-03,staff\n"
        f"SB01,值班室,{day(1)} 20:00,{day(2)} 08:00,SB01-03,staff\n"
        f"SB01,带班,{day(2)} 08:00,{day(3)} 08:00,SB01-02,leader\n",
        encoding="utf-8",
    )
    imported = zhiban(
        "roster", "import", *(str(p) for p in files.iterdir()), "--config", str(config)
    )
    assert imported.returncode == 0, imported.stderr
    out = tmp_path / "zheng.ics"
    written = zhiban("ical", "SB01-03", "--out", str(out), "--config", str(config))
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == f"{out}: 2 shifts of 郑强"
    events = Calendar.from_ical(out.read_bytes()).walk("VEVENT")
    local = [
        datetime(today.year, today.month, today.day, 8, tzinfo=tz) - timedelta(days=1),
        datetime(today.year, today.month, today.day, 20, tzinfo=tz) + timedelta(days=1),
    ]
    assert [
        (e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"]), str(e["location"]))
        for e in events
    ] == [
        (local[0], local[0] + timedelta(hours=12), "Duty · 值班室 · 石坝小学", "石坝小学"),
        (local[1], local[1] + timedelta(hours=12), "Duty · 值班室 · 石坝小学", "石坝小学"),
    ]
    # The same shifts as the database holds for 郑强 from 30 days ago on (stored in UTC).
    with sqlite3.connect(tmp_path / "z.db") as db:
        stored = db.execute(
            'SELECT s.start, s."end", s.post FROM shifts s JOIN people p ON p.id = s.person_id'
            " WHERE p.staff_no = 'SB01-03' AND s.\"end\" >= ? ORDER BY s.start",
            ((datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S"),),
        ).fetchall()
    assert [
        (
            e.decoded("dtstart").astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            e.decoded("dtend").astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            str(e["summary"]).split(" · ")[1],
        )
        for e in events
    ] == [(start[:19], end[:19], post) for start, end, post in stored]
    # Written again, the same shifts keep their UIDs: a calendar updates them, no duplicates.
    again = tmp_path / "again.ics"
    assert zhiban("ical", "SB01-03", "--out", str(again), "--config", str(config)).returncode == 0
    uids = [str(e["uid"]) for e in Calendar.from_ical(again.read_bytes()).walk("VEVENT")]
    assert uids == [str(e["uid"]) for e in events] and len(set(uids)) == 2
    unknown = zhiban("ical", "NOSUCH", "--config", str(config))
    assert (unknown.returncode, unknown.stderr.strip().splitlines()) == (
        1,
        ["zhiban: Nobody on the roster has staff number NOSUCH."],
    )
