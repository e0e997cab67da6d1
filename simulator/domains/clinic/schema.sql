-- clinic: an outpatient clinic. Doctors belong to departments and work fixed weekly hours
-- (weekday 0 = Sunday ... 6 = Saturday, as SQLite's strftime('%w')); appointments take
-- one 30-minute slot inside those hours, and a slot holds at most one live appointment.
-- Dates are TEXT 'YYYY-MM-DD', times TEXT 'HH:MM'.

CREATE TABLE departments (
    department_id  INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    floor          INTEGER NOT NULL CHECK (floor BETWEEN 0 AND 9),
    phone          TEXT NOT NULL
);

CREATE TABLE doctors (
    doctor_id               INTEGER PRIMARY KEY,
    first_name              TEXT NOT NULL,
    last_name               TEXT NOT NULL,
    department_id           INTEGER NOT NULL REFERENCES departments (department_id),
    specialty               TEXT NOT NULL,
    email                   TEXT NOT NULL UNIQUE,
    room                    TEXT NOT NULL,
    accepting_new_patients  INTEGER NOT NULL DEFAULT 1 CHECK (accepting_new_patients IN (0, 1))
);

CREATE TABLE doctor_hours (
    hours_id    INTEGER PRIMARY KEY,
    doctor_id   INTEGER NOT NULL REFERENCES doctors (doctor_id),
    weekday     INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_time  TEXT NOT NULL CHECK (start_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    end_time    TEXT NOT NULL CHECK (end_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    UNIQUE (doctor_id, weekday),
    CHECK (start_time < end_time)
);

CREATE TABLE patients (
    patient_id          INTEGER PRIMARY KEY,
    first_name          TEXT NOT NULL,
    last_name           TEXT NOT NULL,
    date_of_birth       TEXT NOT NULL CHECK (date_of_birth GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    sex                 TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other')),
    phone               TEXT NOT NULL UNIQUE,
    email               TEXT UNIQUE,
    insurance_provider  TEXT,
    insurance_number    TEXT UNIQUE,
    primary_doctor_id   INTEGER REFERENCES doctors (doctor_id),
    registered_on       TEXT NOT NULL CHECK (registered_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    CHECK ((insurance_provider IS NULL) = (insurance_number IS NULL))
);

CREATE TABLE appointments (
    appointment_id    INTEGER PRIMARY KEY,
    patient_id        INTEGER NOT NULL REFERENCES patients (patient_id),
    doctor_id         INTEGER NOT NULL REFERENCES doctors (doctor_id),
    date              TEXT NOT NULL CHECK (date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    time              TEXT NOT NULL CHECK (time GLOB '[0-2][0-9]:[03]0'),
    duration_minutes  INTEGER NOT NULL DEFAULT 30 CHECK (duration_minutes = 30),
    reason            TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),
    notes             TEXT,
    booked_on         TEXT NOT NULL CHECK (booked_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')
);

-- A slot is taken by any appointment that is not cancelled, for the doctor and the patient.
CREATE UNIQUE INDEX doctor_slot_taken ON appointments (doctor_id, date, time) WHERE status <> 'cancelled';
CREATE UNIQUE INDEX patient_slot_taken ON appointments (patient_id, date, time) WHERE status <> 'cancelled';

CREATE TABLE prescriptions (
    prescription_id    INTEGER PRIMARY KEY,
    patient_id         INTEGER NOT NULL REFERENCES patients (patient_id),
    doctor_id          INTEGER NOT NULL REFERENCES doctors (doctor_id),
    appointment_id     INTEGER REFERENCES appointments (appointment_id),
    medication         TEXT NOT NULL,
    dosage             TEXT NOT NULL,
    frequency          TEXT NOT NULL,
    start_date         TEXT NOT NULL CHECK (start_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    end_date           TEXT CHECK (end_date IS NULL OR end_date >= start_date),
    refills_remaining  INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'discontinued')),
    CONSTRAINT no_refills_left CHECK (refills_remaining >= 0)
);

CREATE INDEX appointments_by_patient ON appointments (patient_id);
CREATE INDEX prescriptions_by_patient ON prescriptions (patient_id);
