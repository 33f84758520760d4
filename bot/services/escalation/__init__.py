"""Escalation: page a matter's roles level by level (unit, parent, county) until acknowledged.

The rules are one pure function (`policy.decide`); `paging` carries its decisions out for the
engine; `actions` are what people do to a matter (acknowledge, pass up, report straight to the
county, resolve); `views` say what pages and the details view show; `matter` is how a matter is
stored (its levels and timeline). The public names are re-exported here.
"""

from bot.services.escalation.actions import (
    Outcome,
    acknowledge,
    close_for_subject,
    pass_up,
    press,
    reach_county_directly,
    report_direct,
    resolve,
    start,
    view,
)
from bot.services.escalation.matter import STEP_KIND, fire_key, tick_key, timeline
from bot.services.escalation.paging import FALLBACK_CHAIN, advance, mark_undeliverable, step_handler
from bot.services.escalation.policy import PASS_UP_ROLES
from bot.services.escalation.views import (
    ChannelRoutes,
    EscalationView,
    LevelLine,
    Note,
    PageLine,
    PagingContext,
    channel_routes,
    pages_of,
)

__all__ = [
    "FALLBACK_CHAIN",
    "PASS_UP_ROLES",
    "STEP_KIND",
    "ChannelRoutes",
    "EscalationView",
    "LevelLine",
    "Note",
    "Outcome",
    "PageLine",
    "PagingContext",
    "acknowledge",
    "advance",
    "channel_routes",
    "close_for_subject",
    "fire_key",
    "mark_undeliverable",
    "pages_of",
    "pass_up",
    "press",
    "reach_county_directly",
    "report_direct",
    "resolve",
    "start",
    "step_handler",
    "tick_key",
    "timeline",
    "view",
]
