"""robots: what one page to a WeCom, DingTalk or Feishu group robot costs the bot.

Each robot client sends 300 signed pages, one after another, to its loopback stand-in
(tests/channels/standins.py, which checks every signature as the platform does). Figures per
send: median and p99 wall time, and CPU (client and stand-in share the process, so this is an
upper bound on the client's). The platforms allow 20 (DingTalk, WeCom) or 100 (Feishu) a
minute, so what matters is that a send is cheap for the event loop, not how many fit a second.
Writes bench/results/robots.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from support import Options, Result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "channels"))

from standins import DingTalkStandIn, FeishuStandIn, StandIn, WeComStandIn

from bot.channels import ChannelMessage
from bot.channels.dingtalk import DingTalkRobot
from bot.channels.feishu import FeishuRobot
from bot.channels.wecom import WeComRobot

RESULTS = Path(__file__).resolve().parent / "results"
SENDS = 300
CPU_TARGET_MS = 5.0
PAGE = ChannelMessage(
    title="【重大】城关中学 实验楼起火",
    text="事件：实验楼起火\n地点：城关中学\n发生：09:12（18 分钟前）\n请接报并电话联系学校。",
    link="https://zhiban.example.cn/a/Q3hT9k",
    mention_phones=("13800001111", "13900002222"),
)


async def _measure(
    standin: StandIn, robot: WeComRobot | DingTalkRobot | FeishuRobot
) -> dict[str, float]:
    walls = []
    cpu_started = time.process_time()
    for _ in range(SENDS):
        started = time.perf_counter()
        await robot.send(PAGE)
        walls.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_started
    walls.sort()
    return {
        "median_ms": round(statistics.median(walls) * 1000, 2),
        "p99_ms": round(walls[int(len(walls) * 0.99) - 1] * 1000, 2),
        "cpu_ms_per_send": round(cpu / SENDS * 1000, 2),
        "received": len(standin.received),
    }


async def run(options: Options) -> Result:
    secret = "SEC" + "5a" * 32
    figures: dict[str, dict[str, float]] = {}
    async with WeComStandIn() as wecom:
        figures["wecom"] = await _measure(wecom, WeComRobot("w", wecom.url))
    async with DingTalkStandIn(secret=secret) as dingtalk:
        figures["dingtalk"] = await _measure(dingtalk, DingTalkRobot("d", dingtalk.url, secret))
    async with FeishuStandIn(secret=secret) as feishu:
        figures["feishu"] = await _measure(feishu, FeishuRobot("f", feishu.url, secret))
    passed = all(
        f["received"] == SENDS and f["cpu_ms_per_send"] <= CPU_TARGET_MS for f in figures.values()
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "robots.json").write_text(
        json.dumps({"passed": passed, "sends": SENDS, **figures}, indent=2) + "\n"
    )
    line = "  ".join(
        f"{kind} median {f['median_ms']:.1f} ms p99 {f['p99_ms']:.1f} ms "
        f"cpu {f['cpu_ms_per_send']:.1f} ms/send {int(f['received'])}/{SENDS}"
        for kind, f in figures.items()
    )
    return Result("robots", passed, f"{line} (cpu ≤ {CPU_TARGET_MS:g} ms/send, all received)")
