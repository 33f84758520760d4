"""The instance's Prometheus metrics, on a registry of its own (two stacks never mix)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.services.health import OpsFigures

# The kinds /metrics counts updates by; anything else (a member change, an edit) is "other".
UPDATE_KINDS = ("message", "callback", "other")
# Where a 429 (flood wait) was answered: the outbox sender, or the bot's direct replies.
FLOOD_SOURCES = ("outbox", "replies")


def _package_version() -> str:
    try:
        return version("zhiban")
    except PackageNotFoundError:
        return "unknown"


class _Scraped(Collector):
    """Gauges read at scrape time: the database's figures and the instance's role."""

    def __init__(self) -> None:
        self.figures: OpsFigures | None = None
        self.database_up = False
        self.leader = False

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges from the last snapshot set by `Metrics.render`."""
        yield GaugeMetricFamily(
            "zhiban_leader", "1 when this instance takes updates, 0 when it stands by", self.leader
        )
        yield GaugeMetricFamily(
            "zhiban_database_up",
            "1 when the database answered this scrape's queries in time",
            self.database_up,
        )
        figures = self.figures
        if figures is None:
            return
        pages = GaugeMetricFamily("zhiban_pages", "Pages by status", labels=["status"])
        for status, count in sorted(figures.pages.items()):
            pages.add_metric([status], count)
        yield pages
        yield GaugeMetricFamily(
            "zhiban_outbox_pending",
            "Outgoing messages due and not sent yet",
            figures.outbox_due,
        )
        yield GaugeMetricFamily(
            "zhiban_outbox_oldest_pending_seconds",
            "Age of the oldest outgoing message due and not sent yet (0 when none)",
            figures.outbox_oldest_age,
        )
        yield GaugeMetricFamily(
            "zhiban_engine_lag_seconds",
            "How long the oldest unhandled deadline has been due (0 when none)",
            figures.engine_lag,
        )


class Metrics:
    """Counters the bot moves as it works, and the scrape-time gauges, on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._updates = Counter(
            "zhiban_updates_handled",
            "Updates taken from Telegram, by kind",
            ["kind"],
            registry=self.registry,
        )
        self._floods = Counter(
            "zhiban_telegram_429",
            "Flood-wait answers (429 Too Many Requests) received from the Bot API",
            ["source"],
            registry=self.registry,
        )
        for kind in UPDATE_KINDS:
            self._updates.labels(kind)
        for source in FLOOD_SOURCES:
            self._floods.labels(source)
        Info("zhiban_build", "Version of Zhiban and of Python", registry=self.registry).info(
            {"version": _package_version(), "python": platform.python_version()}
        )
        self._scraped = _Scraped()
        self.registry.register(self._scraped)

    def update_handled(self, kind: str) -> None:
        """Count one update taken (kind: message, callback or other)."""
        self._updates.labels(kind if kind in UPDATE_KINDS else "other").inc()

    def flood_wait(self, source: str) -> None:
        """Count one 429 answered by the Bot API to the outbox or to a direct reply."""
        self._floods.labels(source).inc()

    def render(self, figures: OpsFigures | None, *, leader: bool) -> bytes:
        """The Prometheus text exposition, with this scrape's figures (None: no database)."""
        # No await between setting the snapshot and generating: concurrent scrapes don't mix.
        self._scraped.figures = figures
        self._scraped.database_up = figures is not None
        self._scraped.leader = leader
        return generate_latest(self.registry)
