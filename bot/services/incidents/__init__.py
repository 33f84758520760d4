"""Incidents: report, follow-up (续报), final report (终报), 漏报 records, lists and timelines.

`reporting` holds the use cases that change an incident, `views` what lists and timelines show,
`numbering` the day's numbers, `kinds` the categories and severities with their catalog names,
`lookup` finding an incident and who may see it. The public names are re-exported here.
"""

from bot.services.escalation.matter import on_reach
from bot.services.incidents.kinds import (
    CATEGORY_NAMES,
    SEVERITY_NAMES,
    Category,
    EntryKind,
    IncidentStatus,
)
from bot.services.incidents.numbering import next_number
from bot.services.incidents.reporting import (
    POLICY,
    SUBJECT_TYPE,
    Closed,
    FollowedUp,
    IncidentRef,
    ReportDraft,
    Reported,
    UnitChoice,
    check_draft,
    final_report,
    final_report_target,
    follow_up,
    follow_up_target,
    heard_elsewhere_schools,
    heard_elsewhere_unit,
    keep_reach,
    record_heard_elsewhere,
    report,
)
from bot.services.incidents.views import (
    FinalReport,
    IncidentLine,
    IncidentTimeline,
    TimelineItem,
    open_in_scope,
    timeline,
)
from bot.services.matter_clock import Holder

__all__ = [
    "CATEGORY_NAMES",
    "POLICY",
    "SEVERITY_NAMES",
    "SUBJECT_TYPE",
    "Category",
    "Closed",
    "EntryKind",
    "FinalReport",
    "FollowedUp",
    "Holder",
    "IncidentLine",
    "IncidentRef",
    "IncidentStatus",
    "IncidentTimeline",
    "ReportDraft",
    "Reported",
    "TimelineItem",
    "UnitChoice",
    "check_draft",
    "final_report",
    "final_report_target",
    "follow_up",
    "follow_up_target",
    "heard_elsewhere_schools",
    "heard_elsewhere_unit",
    "next_number",
    "open_in_scope",
    "record_heard_elsewhere",
    "report",
    "timeline",
]

# Incidents keep their own facts (highest unit reached, late flag) as their escalation moves.
on_reach(SUBJECT_TYPE, keep_reach)
