"""What an incident can be: its categories, severities, statuses and timeline kinds, named."""

from __future__ import annotations

from enum import StrEnum

from bot.config import Severity
from bot.i18n import N_


class Category(StrEnum):
    """Incident categories (SPEC §3.4)."""

    FIRE = "fire"
    BUILDING_FACILITY = "building_facility"
    FOOD_POISONING = "food_poisoning"
    CROWD_CRUSH = "crowd_crush"
    TRAFFIC = "traffic"
    FLOOD_WEATHER = "flood_weather"
    PUBLIC_ORDER_VIOLENCE = "public_order_violence"
    STUDENT_INJURY_ILLNESS = "student_injury_illness"
    MISSING_STUDENT = "missing_student"
    OTHER = "other"


class IncidentStatus(StrEnum):
    """An incident is open until its final report (终报) closes it."""

    OPEN = "open"
    CLOSED = "closed"


class EntryKind(StrEnum):
    """Kinds of `IncidentEntry` rows (the incident's own part of its timeline)."""

    REPORT = "report"
    FOLLOW_UP = "follow_up"
    FINAL_REPORT = "final_report"
    # Recorded by an officer above who heard of it elsewhere (漏报 of the unit).
    NOT_REPORTED_BY_UNIT = "not_reported_by_unit"


CATEGORY_NAMES: dict[Category, str] = {
    Category.FIRE: N_("Fire"),
    Category.BUILDING_FACILITY: N_("Building or facility"),
    Category.FOOD_POISONING: N_("Food poisoning"),
    Category.CROWD_CRUSH: N_("Crowd crush or stampede"),
    Category.TRAFFIC: N_("Traffic accident"),
    Category.FLOOD_WEATHER: N_("Flood or severe weather"),
    Category.PUBLIC_ORDER_VIOLENCE: N_("Public order or violence"),
    Category.STUDENT_INJURY_ILLNESS: N_("Student injury or illness"),
    Category.MISSING_STUDENT: N_("Missing student"),
    Category.OTHER: N_("Other"),
}

SEVERITY_NAMES: dict[Severity, str] = {
    Severity.ESPECIALLY_SERIOUS: N_("Especially serious"),
    Severity.SERIOUS: N_("Serious"),
    Severity.LARGE: N_("Large"),
    Severity.GENERAL: N_("General"),
}
