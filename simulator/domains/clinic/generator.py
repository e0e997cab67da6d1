"""Seeded rows for the clinic pack: departments, doctors and their hours, patients,
appointments and prescriptions.

Every appointment sits in a 30-minute slot inside its doctor's hours for that weekday,
no doctor or patient holds two live appointments in one slot, past appointments are
mostly completed (some cancelled or missed), future ones scheduled or confirmed, and
prescriptions follow completed visits with medication that fits the department.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from simulator.domains._common import TODAY_DATE
from simulator.domains._people import date_between, email_for, iso, phone_for, pick_person

__all__ = ["generate", "sqlite_weekday"]

Rows = dict[str, list[dict[str, Any]]]

# name, floor, specialties, visit reasons, (medication, dosage, frequency)
_DEPARTMENTS: tuple[tuple[str, int, tuple[str, ...], tuple[str, ...], tuple[tuple[str, str, str], ...]], ...] = (
    (
        "General Practice",
        0,
        ("Family medicine", "General practice"),
        (
            "Annual check-up",
            "Persistent cough",
            "Sore throat",
            "Blood pressure review",
            "Fatigue",
            "Vaccination",
            "Back pain",
            "Sick note",
        ),
        (
            ("Amoxicillin", "500 mg", "three times daily"),
            ("Ibuprofen", "400 mg", "as needed, up to three times daily"),
            ("Omeprazole", "20 mg", "once daily"),
            ("Amlodipine", "5 mg", "once daily"),
        ),
    ),
    (
        "Cardiology",
        2,
        ("Cardiology", "Heart failure", "Cardiac rhythm"),
        ("Chest pain follow-up", "Palpitations", "ECG review", "Hypertension follow-up", "Post-surgery check"),
        (
            ("Atorvastatin", "20 mg", "once daily at night"),
            ("Bisoprolol", "2.5 mg", "once daily"),
            ("Lisinopril", "10 mg", "once daily"),
            ("Apixaban", "5 mg", "twice daily"),
        ),
    ),
    (
        "Dermatology",
        1,
        ("Dermatology", "Paediatric dermatology"),
        ("Skin rash", "Mole check", "Acne treatment", "Eczema flare-up", "Psoriasis review"),
        (
            ("Tretinoin cream", "0.05%", "once nightly"),
            ("Doxycycline", "100 mg", "once daily"),
            ("Hydrocortisone cream", "1%", "twice daily"),
            ("Calcipotriol ointment", "50 mcg/g", "once daily"),
        ),
    ),
    (
        "Pediatrics",
        1,
        ("Paediatrics", "Neonatology"),
        ("Well-child visit", "Fever", "Ear pain", "Childhood vaccinations", "Growth check"),
        (
            ("Amoxicillin suspension", "250 mg/5 ml", "three times daily"),
            ("Paracetamol syrup", "120 mg/5 ml", "every six hours as needed"),
            ("Salbutamol inhaler", "100 mcg", "two puffs as needed"),
        ),
    ),
    (
        "Orthopedics",
        3,
        ("Orthopaedic surgery", "Sports medicine"),
        ("Knee pain", "Shoulder injury", "Fracture follow-up", "Sprained ankle", "Hip pain"),
        (
            ("Naproxen", "500 mg", "twice daily with food"),
            ("Diclofenac gel", "1%", "three times daily"),
            ("Codeine phosphate", "30 mg", "every six hours as needed"),
        ),
    ),
    (
        "Neurology",
        3,
        ("Neurology", "Headache medicine"),
        ("Migraine", "Dizziness", "Numbness in hands", "Seizure follow-up", "Memory concerns"),
        (
            ("Sumatriptan", "50 mg", "at onset of migraine"),
            ("Gabapentin", "300 mg", "three times daily"),
            ("Levetiracetam", "500 mg", "twice daily"),
        ),
    ),
    (
        "Ophthalmology",
        2,
        ("Ophthalmology",),
        ("Blurred vision", "Eye test", "Dry eyes", "Glaucoma review", "Red eye"),
        (
            ("Latanoprost eye drops", "0.005%", "one drop nightly"),
            ("Chloramphenicol eye drops", "0.5%", "one drop every two hours"),
            ("Carbomer eye gel", "0.2%", "three times daily"),
        ),
    ),
    (
        "Endocrinology",
        4,
        ("Endocrinology", "Diabetology"),
        ("Diabetes review", "Thyroid check", "HbA1c results", "Weight management"),
        (
            ("Metformin", "500 mg", "twice daily with meals"),
            ("Levothyroxine", "50 mcg", "once daily before breakfast"),
            ("Gliclazide", "80 mg", "once daily"),
        ),
    ),
)
_SHIFTS = (("08:00", "12:00"), ("09:00", "13:00"), ("09:00", "17:00"), ("13:00", "18:00"), ("08:30", "16:30"))
_INSURERS = {"Northstar Health": "NSH", "Harbor Mutual": "HBM", "CarePlus": "CPL", "Unity Assurance": "UNA"}
_NOTES = (
    "Follow-up in six weeks.",
    "Results normal.",
    "Referred for blood tests.",
    "Advised rest and fluids.",
    "Medication adjusted.",
    "Discussed lifestyle changes.",
    "Review if symptoms persist.",
)
_N_PATIENTS = 70
_N_APPOINTMENTS = 84
_FIRST_DAY = dt.date(2026, 1, 5)
_LAST_DAY = dt.date(2026, 7, 31)


def sqlite_weekday(day: dt.date) -> int:
    """The weekday as SQLite's ``strftime('%w')`` counts it: 0 = Sunday ... 6 = Saturday."""
    return (day.weekday() + 1) % 7


def generate(seed: int) -> Rows:
    """Rows for every table of ``schema.sql``, in foreign-key-safe order."""
    rng = random.Random(f"clinic:{seed}")
    departments = [
        {
            "department_id": i,
            "name": name,
            "floor": floor,
            "phone": f"+44 20 7946 0{100 + 17 * i:03d}",
        }
        for i, (name, floor, *_rest) in enumerate(_DEPARTMENTS, start=1)
    ]
    doctors, hours = _doctors(rng)
    patients = _patients(rng, doctors)
    appointments = _appointments(rng, doctors, hours, patients)
    for a in appointments:  # nobody books before registering
        patient = patients[a["patient_id"] - 1]
        patient["registered_on"] = min(patient["registered_on"], a["booked_on"])
    prescriptions = _prescriptions(rng, doctors, patients, appointments)
    return {
        "departments": departments,
        "doctors": doctors,
        "doctor_hours": hours,
        "patients": patients,
        "appointments": appointments,
        "prescriptions": prescriptions,
    }


def _doctors(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    doctors: list[dict[str, Any]] = []
    hours: list[dict[str, Any]] = []
    emails: set[str] = set()
    for department_id, (_name, floor, specialties, *_rest) in enumerate(_DEPARTMENTS, start=1):
        for _ in range(3 if department_id == 1 else 2):
            person = pick_person(rng)
            doctor_id = len(doctors) + 1
            email = email_for(rng, person, emails).split("@")[0] + "@riverside-clinic.example"
            doctors.append(
                {
                    "doctor_id": doctor_id,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "department_id": department_id,
                    "specialty": rng.choice(specialties),
                    "email": email,
                    "room": f"{floor}.{rng.randint(1, 24):02d}",
                    "accepting_new_patients": 0 if rng.random() < 0.15 else 1,
                }
            )
            shift = rng.choice(_SHIFTS)
            days = sorted(rng.sample(range(1, 6), rng.randint(3, 5)))
            if department_id == 1 and rng.random() < 0.5:
                days.append(6)  # general practitioners cover Saturday mornings
            for weekday in days:
                start, end = ("09:00", "12:00") if weekday == 6 else shift
                hours.append(
                    {
                        "hours_id": len(hours) + 1,
                        "doctor_id": doctor_id,
                        "weekday": weekday,
                        "start_time": start,
                        "end_time": end,
                    }
                )
    return doctors, hours


def _patients(rng: random.Random, doctors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    gps = [d["doctor_id"] for d in doctors if d["department_id"] == 1]
    emails: set[str] = set()
    phones: set[str] = set()
    insurance_numbers: set[str] = set()
    patients: list[dict[str, Any]] = []
    for patient_id in range(1, _N_PATIENTS + 1):
        person = pick_person(rng)
        # Ages skew adult, with a share of children for the paediatric department.
        birth_year = rng.randint(2012, 2024) if rng.random() < 0.15 else rng.randint(1938, 2006)
        dob = date_between(rng, dt.date(birth_year, 1, 1), dt.date(birth_year, 12, 28))
        provider = rng.choice(list(_INSURERS)) if rng.random() < 0.75 else None
        number = None
        if provider is not None:
            number = f"{_INSURERS[provider]}-{rng.randint(1000000, 9999999)}"
            while number in insurance_numbers:
                number = f"{_INSURERS[provider]}-{rng.randint(1000000, 9999999)}"
            insurance_numbers.add(number)
        patients.append(
            {
                "patient_id": patient_id,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "date_of_birth": iso(dob),
                "sex": "other" if rng.random() < 0.02 else person.sex,
                "phone": phone_for(rng, "+44", phones),
                "email": email_for(rng, person, emails) if rng.random() < 0.8 else None,
                "insurance_provider": provider,
                "insurance_number": number,
                "primary_doctor_id": rng.choice(gps) if rng.random() < 0.85 else None,
                "registered_on": iso(date_between(rng, dt.date(2026, 1, 2), dt.date(2026, 2, 27))),
            }
        )
    return patients


def _slots(start: str, end: str) -> list[str]:
    """The 30-minute slot starts from ``start`` up to, not including, ``end``."""

    def minutes(hhmm: str) -> int:
        return int(hhmm[:2]) * 60 + int(hhmm[3:])

    return [f"{m // 60:02d}:{m % 60:02d}" for m in range(minutes(start), minutes(end), 30)]


def _appointments(
    rng: random.Random,
    doctors: list[dict[str, Any]],
    hours: list[dict[str, Any]],
    patients: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    works: dict[tuple[int, int], list[str]] = {
        (h["doctor_id"], h["weekday"]): _slots(h["start_time"], h["end_time"]) for h in hours
    }
    taken: set[tuple[str, int, str, str]] = set()
    drafts: list[tuple[str, str, int, int, int]] = []
    while len(drafts) < _N_APPOINTMENTS:
        patient = rng.choice(patients)
        child = patient["date_of_birth"] >= "2012-01-01"
        if patient["primary_doctor_id"] is not None and rng.random() < 0.45:
            doctor = doctors[patient["primary_doctor_id"] - 1]
        else:
            doctor = rng.choice(doctors)
        if (doctor["department_id"] == 4) != child and rng.random() < 0.9:
            continue  # children mostly see paediatricians, adults almost never do
        # A third of the appointments lie ahead; a few are today.
        roll = rng.random()
        if roll < 0.06:
            day = TODAY_DATE
        elif roll < 0.4:
            day = date_between(rng, TODAY_DATE + dt.timedelta(days=1), _LAST_DAY)
        else:
            day = date_between(rng, _FIRST_DAY, TODAY_DATE - dt.timedelta(days=1))
        slots = works.get((doctor["doctor_id"], sqlite_weekday(day)))
        if not slots:
            continue
        time = rng.choice(slots)
        d = iso(day)
        if ("doctor", doctor["doctor_id"], d, time) in taken or ("patient", patient["patient_id"], d, time) in taken:
            continue
        taken.add(("doctor", doctor["doctor_id"], d, time))
        taken.add(("patient", patient["patient_id"], d, time))
        drafts.append((d, time, doctor["doctor_id"], patient["patient_id"], doctor["department_id"]))
    drafts.sort()
    appointments: list[dict[str, Any]] = []
    for appointment_id, (d, time, doctor_id, patient_id, department_id) in enumerate(drafts, start=1):
        day = dt.date.fromisoformat(d)
        status = _status(rng, day, time)
        booked = max(day - dt.timedelta(days=rng.randint(1, 40)), dt.date(2026, 1, 2))
        appointments.append(
            {
                "appointment_id": appointment_id,
                "patient_id": patient_id,
                "doctor_id": doctor_id,
                "date": d,
                "time": time,
                "duration_minutes": 30,
                "reason": rng.choice(_DEPARTMENTS[department_id - 1][3]),
                "status": status,
                "notes": rng.choice(_NOTES) if status == "completed" and rng.random() < 0.6 else None,
                "booked_on": iso(min(booked, TODAY_DATE)),
            }
        )
    return appointments


def _status(rng: random.Random, day: dt.date, time: str) -> str:
    if day < TODAY_DATE:
        return rng.choices(("completed", "cancelled", "no_show"), (78, 13, 9))[0]
    if day == TODAY_DATE:
        if time < "11:00":
            return rng.choices(("completed", "no_show"), (90, 10))[0]
        return rng.choices(("checked_in", "confirmed"), (30, 70))[0] if time < "12:00" else "confirmed"
    return rng.choices(("scheduled", "confirmed", "cancelled"), (55, 38, 7))[0]


def _prescriptions(
    rng: random.Random,
    doctors: list[dict[str, Any]],
    patients: list[dict[str, Any]],
    appointments: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    prescriptions: list[dict[str, Any]] = []
    visits: list[dict[str, Any] | None] = [a for a in appointments if a["status"] == "completed"]
    visits += [None] * 12  # repeat prescriptions carried over from before the first visit on file
    for visit in visits:
        if visit is not None and rng.random() < 0.2:
            continue
        if visit is None:
            patient = rng.choice([p for p in patients if p["primary_doctor_id"] is not None])
            doctor = doctors[patient["primary_doctor_id"] - 1]
            start = date_between(rng, dt.date(2026, 1, 2), dt.date(2026, 1, 31))
        else:
            patient = patients[visit["patient_id"] - 1]
            doctor = doctors[visit["doctor_id"] - 1]
            start = dt.date.fromisoformat(visit["date"])
        medication, dosage, frequency = rng.choice(_DEPARTMENTS[doctor["department_id"] - 1][4])
        length = rng.choice((7, 14, 30, 90, 180, None))
        end = start + dt.timedelta(days=length) if length is not None else None
        if end is not None and end < TODAY_DATE:
            status, refills = "completed", 0
        elif rng.random() < 0.1:
            status, refills = "discontinued", rng.randint(0, 2)
        else:
            status, refills = "active", rng.choices((0, 1, 2, 3, 5), (25, 25, 20, 20, 10))[0]
        prescriptions.append(
            {
                "prescription_id": len(prescriptions) + 1,
                "patient_id": patient["patient_id"],
                "doctor_id": doctor["doctor_id"],
                "appointment_id": visit["appointment_id"] if visit is not None else None,
                "medication": medication,
                "dosage": dosage,
                "frequency": frequency,
                "start_date": iso(start),
                "end_date": iso(end) if end is not None else None,
                "refills_remaining": refills,
                "status": status,
            }
        )
    return prescriptions
