"""The clinic pack: departments, doctors with weekly hours, patients, appointments, prescriptions."""

from __future__ import annotations

from simulator.domains import DomainPack, register_domain
from simulator.domains.clinic.composite import composite_tools
from simulator.domains.clinic.generator import generate

__all__ = ["clinic_pack"]


@register_domain("clinic")
def clinic_pack() -> DomainPack:
    return DomainPack(
        name="clinic",
        package=__name__,
        generate=generate,
        composite_tools=composite_tools,
    )
