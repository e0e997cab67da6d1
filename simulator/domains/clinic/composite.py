"""Hand-written clinic tools: booking and moving appointments in free slots, a doctor's
day, and prescription refills."""

from __future__ import annotations

from schemas import Effect, ResultShape, ToolSpec
from simulator.domains._common import TODAY, boolean, composite_tool, date_param, integer, string

__all__ = ["composite_tools"]

_SLOT_TIME = string("Start of a 30-minute slot (HH:MM, on the hour or half past)", pattern=r"^([01]\d|2[0-3]):[03]0$")
_LIVE = "('scheduled', 'confirmed')"
_APPOINTMENT: dict[str, str | list[str]] = {
    "appointment_id": "integer",
    "patient_id": "integer",
    "doctor_id": "integer",
    "date": "string",
    "time": "string",
    "duration_minutes": "integer",
    "reason": "string",
    "status": "string",
    "notes": ["string", "null"],
    "booked_on": "string",
}
_APPOINTMENT_COLUMNS = ", ".join(_APPOINTMENT)


def _within_hours(doctor: str) -> str:
    # A real calendar day (a modifier makes date() normalise 06-31 to 07-01, so only a
    # real day round-trips), after today, inside the doctor's hours.
    return (
        f"date(:date, '+0 days') = :date AND :date > '{TODAY}'"
        " AND EXISTS (SELECT 1 FROM doctor_hours AS h"
        f" WHERE h.doctor_id = {doctor} AND h.weekday = CAST(strftime('%w', :date) AS INTEGER)"
        " AND :time >= h.start_time AND :time < h.end_time)"
    )


def composite_tools() -> list[ToolSpec]:
    return [_book_appointment(), _reschedule_appointment(), _doctor_schedule(), _refill_prescription()]


def _book_appointment() -> ToolSpec:
    return composite_tool(
        "book_appointment",
        "Book a patient into a free 30-minute slot of a doctor. The slot must start inside "
        "the doctor's working hours for that weekday, on a day after today; otherwise, or "
        "for an unknown patient, it fails with not_found. A slot the doctor or the patient "
        "already has taken fails with a UNIQUE constraint error. Nothing changes on failure.",
        table="appointments",
        params={
            "patient_id": integer("The patient"),
            "doctor_id": integer("The doctor"),
            "date": date_param("The day"),
            "time": _SLOT_TIME,
            "reason": string("Why the patient is coming, in a few words"),
        },
        required=["patient_id", "doctor_id", "date", "time", "reason"],
        statements=[
            "INSERT INTO appointments (patient_id, doctor_id, date, time, reason, status, booked_on)"
            f" SELECT :patient_id, :doctor_id, :date, :time, :reason, 'scheduled', '{TODAY}'"
            " WHERE EXISTS (SELECT 1 FROM patients WHERE patient_id = :patient_id)"
            f" AND {_within_hours(':doctor_id')}"
            f" RETURNING {_APPOINTMENT_COLUMNS}"
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output=_APPOINTMENT,
    )


def _reschedule_appointment() -> ToolSpec:
    return composite_tool(
        "reschedule_appointment",
        "Move a scheduled or confirmed appointment to another free slot with the same "
        "doctor; it becomes 'scheduled' again. Fails with not_found when the appointment "
        "cannot be moved (unknown, completed, cancelled) or the new slot is outside the "
        "doctor's hours or not after today, and with a UNIQUE constraint error when the "
        "new slot is taken.",
        table="appointments",
        params={
            "appointment_id": integer("The appointment to move"),
            "date": date_param("The new day"),
            "time": _SLOT_TIME,
        },
        required=["appointment_id", "date", "time"],
        statements=[
            "UPDATE appointments SET date = :date, time = :time, status = 'scheduled'"
            f" WHERE appointment_id = :appointment_id AND status IN {_LIVE}"
            f" AND {_within_hours('appointments.doctor_id')}"
            f" RETURNING {_APPOINTMENT_COLUMNS}"
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output=_APPOINTMENT,
    )


def _doctor_schedule() -> ToolSpec:
    return composite_tool(
        "doctor_schedule",
        "A doctor's day, slot by slot: every 30-minute slot of the doctor's hours on that "
        "date, 'free' or 'booked' (with the appointment and patient). No rows means the "
        "doctor does not work that weekday. Set only_free to list free slots only.",
        table="appointments",
        params={
            "doctor_id": integer("The doctor"),
            "date": date_param("The day"),
            "only_free": boolean("List only the free slots", default=False),
        },
        required=["doctor_id", "date"],
        statements=[
            "WITH RECURSIVE hours AS ("
            "  SELECT start_time, end_time FROM doctor_hours"
            "  WHERE doctor_id = :doctor_id AND weekday = CAST(strftime('%w', :date) AS INTEGER)),"
            " slots(time) AS ("
            "  SELECT start_time FROM hours"
            "  UNION ALL"
            "  SELECT strftime('%H:%M', slots.time, '+30 minutes') FROM slots, hours"
            "  WHERE strftime('%H:%M', slots.time, '+30 minutes') < hours.end_time)"
            " SELECT :date AS date, s.time,"
            " CASE WHEN a.appointment_id IS NULL THEN 'free' ELSE 'booked' END AS slot,"
            " a.appointment_id, a.patient_id,"
            " CASE WHEN p.patient_id IS NULL THEN NULL ELSE p.first_name || ' ' || p.last_name END"
            " AS patient_name,"
            " a.status AS appointment_status"
            " FROM slots AS s"
            " LEFT JOIN appointments AS a ON a.doctor_id = :doctor_id AND a.date = :date"
            "  AND a.time = s.time AND a.status <> 'cancelled'"
            " LEFT JOIN patients AS p ON p.patient_id = a.patient_id"
            " WHERE NOT :only_free OR a.appointment_id IS NULL"
            " ORDER BY s.time"
        ],
        result=ResultShape.ROWS,
        effect=Effect.READ,
        output={
            "date": "string",
            "time": "string",
            "slot": "string",
            "appointment_id": ["integer", "null"],
            "patient_id": ["integer", "null"],
            "patient_name": ["string", "null"],
            "appointment_status": ["string", "null"],
        },
    )


def _refill_prescription() -> ToolSpec:
    return composite_tool(
        "refill_prescription",
        "Use one refill of an active prescription. Fails with not_found when the "
        "prescription is unknown or not active, and with "
        "'CHECK constraint failed: no_refills_left' when it has no refills remaining.",
        table="prescriptions",
        params={"prescription_id": integer("The prescription")},
        required=["prescription_id"],
        statements=[
            "UPDATE prescriptions SET refills_remaining = refills_remaining - 1"
            " WHERE prescription_id = :prescription_id AND status = 'active'"
            " RETURNING prescription_id, patient_id, doctor_id, medication, dosage, frequency,"
            " refills_remaining, status"
        ],
        result=ResultShape.ROW,
        effect=Effect.WRITE,
        output={
            "prescription_id": "integer",
            "patient_id": "integer",
            "doctor_id": "integer",
            "medication": "string",
            "dosage": "string",
            "frequency": "string",
            "refills_remaining": "integer",
            "status": "string",
        },
    )
