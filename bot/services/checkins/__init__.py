"""Safety check-ins (平安报告): rounds, answers, and compliance per person and unit.

`rounds` plans the rounds, prompts everyone on duty, reminds and pages the silent (the
engine's handlers); `answers` takes ✅ All normal and the report sent from 🚨 Report a
problem; `compliance` counts in time, late and missing for a unit and a period.
"""

from bot.services.checkins.answers import (
    Answer,
    Answered,
    ProblemReported,
    ProblemTarget,
    answer_normal,
    answered_text,
    problem_target,
    report_problem,
)
from bot.services.checkins.compliance import (
    CheckinStatus,
    Compliance,
    Figures,
    compliance,
    status,
)
from bot.services.checkins.rounds import (
    KIND_REMIND,
    KIND_ROUND,
    KIND_SILENT,
    POLICY,
    SUBJECT,
    closes_at,
    deadline_handlers,
    on_duty,
    plan,
    plan_upcoming,
    round_times,
)

__all__ = [
    "KIND_REMIND",
    "KIND_ROUND",
    "KIND_SILENT",
    "POLICY",
    "SUBJECT",
    "Answer",
    "Answered",
    "CheckinStatus",
    "Compliance",
    "Figures",
    "ProblemReported",
    "ProblemTarget",
    "answer_normal",
    "answered_text",
    "closes_at",
    "compliance",
    "deadline_handlers",
    "on_duty",
    "plan",
    "plan_upcoming",
    "problem_target",
    "report_problem",
    "round_times",
    "status",
]
