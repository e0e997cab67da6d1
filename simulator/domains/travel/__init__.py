"""The travel pack: airports, dated flights with seats, hotels, travelers, bookings, payments."""

from __future__ import annotations

from simulator.domains import DomainPack, register_domain
from simulator.domains.travel.composite import composite_tools
from simulator.domains.travel.generator import generate

__all__ = ["travel_pack"]


@register_domain("travel")
def travel_pack() -> DomainPack:
    return DomainPack(
        name="travel",
        package=__name__,
        generate=generate,
        composite_tools=composite_tools,
    )
