"""A person's shifts as an iCalendar file (.ics): `zhiban ical STAFF_NO` and /calendar.

What the file holds: every shift of the person that ends at or after 30 days before now
(`DAYS_BACK`), past and coming, so a calendar shows the month behind and everything planned.
One VEVENT per shift; its UID names the shift (`shift-<id>@zhiban`), so importing the file
again updates the events rather than duplicating them (a shift keeps its id when the roster is
imported again: shifts are matched by unit, post and start). Times carry the configured time
zone (a VTIMEZONE is included). SUMMARY reads "值班 · <post> · <unit>" in the person's language;
LOCATION is the unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from sqlmodel import col, select

from bot.errors import NotFound
from bot.i18n import N_, Translator
from bot.models import Person, Shift, Unit
from bot.uow import Database

DAYS_BACK = 30
SUMMARY = N_("Duty · {post} · {unit}")


@dataclass(frozen=True)
class ShiftEntry:
    """One shift as the calendar shows it."""

    shift_id: int
    post: str
    unit: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Feed:
    """A person's shifts for their calendar."""

    staff_no: str
    name: str
    language: str | None
    shifts: list[ShiftEntry]


async def feed(
    db: Database, *, now: datetime, staff_no: str | None = None, person_id: int | None = None
) -> Feed:
    """The shifts of a person (by staff number or id) ending from `DAYS_BACK` days ago on."""
    async with db.read() as uow:
        statement = select(Person)
        if person_id is not None:
            statement = statement.where(Person.id == person_id)
        else:
            statement = statement.where(Person.staff_no == staff_no)
        person = (await uow.session.exec(statement)).first()
        if person is None:
            raise NotFound("Nobody on the roster has staff number {staff_no}.", staff_no=staff_no)
        rows = await uow.session.exec(
            select(Shift, Unit.name)
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .where(Shift.person_id == person.id, col(Shift.end) >= now - timedelta(DAYS_BACK))
            .order_by(col(Shift.start))
        )
        shifts = [
            ShiftEntry(shift.id or 0, shift.post, unit, shift.start, shift.end)
            for shift, unit in rows.all()
        ]
    return Feed(person.staff_no, person.name, person.language, shifts)


def ics(feed: Feed, tr: Translator, tz: ZoneInfo, *, now: datetime) -> bytes:
    """The feed as an .ics file (pure)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Zhiban//duty shifts//")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", tr._("Duty shifts of {name}", name=feed.name))
    for shift in feed.shifts:
        event = Event()
        event.add("uid", f"shift-{shift.shift_id}@zhiban")
        event.add("dtstamp", now)
        event.add("dtstart", shift.start.astimezone(tz))
        event.add("dtend", shift.end.astimezone(tz))
        event.add("summary", tr._(SUMMARY, post=shift.post, unit=shift.unit))
        event.add("location", shift.unit)
        calendar.add_component(event)
    calendar.add_missing_timezones()
    data: bytes = calendar.to_ical()
    return data


def file_name(feed: Feed) -> str:
    """The file's name: zhiban-<staff no>.ics."""
    return f"zhiban-{feed.staff_no}.ics"
