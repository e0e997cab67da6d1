"""The retail pack: an online shop with customers, a catalogue, orders, line items and returns."""

from __future__ import annotations

from simulator.domains import DomainPack, register_domain
from simulator.domains.retail.composite import composite_tools
from simulator.domains.retail.generator import generate

__all__ = ["retail_pack"]


@register_domain("retail")
def retail_pack() -> DomainPack:
    return DomainPack(
        name="retail",
        package=__name__,
        generate=generate,
        composite_tools=composite_tools,
    )
