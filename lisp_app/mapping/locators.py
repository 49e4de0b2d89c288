"""Locator selection (RFC 9300 section 5.3): which RLOCs carry traffic, and in what shares.

The usable locators are those with a priority below 255 that are reachable (R bit, and not marked
down by probing) and have an address we can tunnel to. Among them the best (lowest) priority wins;
its locators share traffic by weight. All-zero weights mean an even split; a zero weight beside
non-zero ones gets no traffic. When every locator of the best priority is gone the next priority
takes over, because selection simply runs again on what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Callable, Iterable

from ..protocol.addresses import AfiListAddress
from ..protocol.records import Locator

UNUSABLE_PRIORITY = 255


@dataclass(frozen=True, slots=True)
class Share:
    """One RLOC chosen for traffic and its weight (a select-group bucket)."""

    rloc: IPv4Address | IPv6Address
    weight: int


def tunnel_address(locator: Locator,
                   families: tuple[int, ...] = (4,)) -> IPv4Address | IPv6Address | None:
    """The address to tunnel to: the locator's own address, or the first member of an AFI list,
    of a family the data plane carries (``families``); None if there is none."""
    addr = locator.address
    candidates = addr.addresses if type(addr) is AfiListAddress else (addr,)
    for cand in candidates:
        if type(cand) in (IPv4Address, IPv6Address) and cand.version in families:
            return cand
    return None


def select_shares(locators: Iterable[Locator],
                  is_down: Callable[[IPv4Address | IPv6Address], bool] | None = None,
                  families: tuple[int, ...] = (4,)) -> tuple[Share, ...]:
    """The RLOCs of the best usable priority with their weights (empty: none usable)."""
    if type(locators) is tuple and len(locators) == 1:  # the common case, a third of the time
        loc = locators[0]
        if loc.priority >= UNUSABLE_PRIORITY or not loc.reachable:
            return ()
        rloc = tunnel_address(loc, families)
        if rloc is None or (is_down is not None and is_down(rloc)):
            return ()
        weight = loc.weight
        if weight == 0:  # all-zero weights: an even split (of one)
            return (Share(rloc, 1),)
        return (Share(rloc, weight),) if weight > 0 else ()
    usable: list[tuple[int, int, IPv4Address | IPv6Address]] = []
    for loc in locators:
        if loc.priority >= UNUSABLE_PRIORITY or not loc.reachable:
            continue
        rloc = tunnel_address(loc, families)
        if rloc is None or (is_down is not None and is_down(rloc)):
            continue
        usable.append((loc.priority, loc.weight, rloc))
    if not usable:
        return ()
    best = min(p for p, _w, _r in usable)
    chosen = [(w, r) for p, w, r in usable if p == best]
    if all(w == 0 for w, _r in chosen):
        return tuple(Share(r, 1) for _w, r in chosen)
    return tuple(Share(r, w) for w, r in chosen if w > 0)


def forwarding_problem(instance_id: int, locators: Iterable[Locator],
                       families: tuple[int, ...], own_rlocs: frozenset,
                       instance_ids: frozenset) -> str | None:
    """Why a mapping (an operator's) could never carry this xTR's traffic, or None if it can:
    its instance-id is none of those the site's traffic comes in (``instance_ids``); a locator
    is one of our own RLOCs (``own_rlocs``: the traffic would come back to us); or no locator
    is usable: each has priority 255 (RFC 9300: not for unicast forwarding) or an address of
    a family we have no RLOC in (``families``). All-zero weights are usable: an even split."""
    if instance_id not in instance_ids:
        ours = ", ".join(str(i) for i in sorted(instance_ids))
        return (f"instance-id {instance_id} carries none of this site's traffic (its site ports "
                f"are in instance-id {ours}): write the prefix as [IID]PREFIX")
    locators = tuple(locators)
    why = []
    for loc in locators:
        if loc.address in own_rlocs:
            return f"locator {loc.address} is this xTR's own RLOC: the traffic would come back"
        if loc.priority >= UNUSABLE_PRIORITY:
            why.append(f"{loc.address} has priority 255 (RFC 9300: not to be used for "
                       "unicast forwarding)")
        elif tunnel_address(loc, families) is None:
            version = getattr(loc.address, "version", None)
            why.append(f"{loc.address} is an IPv{version} address and this xTR has no IPv"
                       f"{version} RLOC" + (" (underlay.rloc_ipv6)" if version == 6 else "")
                       if version is not None else f"{loc.address} is not an IP address")
    if locators and len(why) == len(locators):
        return "no locator can carry traffic: " + "; ".join(why)
    return None
