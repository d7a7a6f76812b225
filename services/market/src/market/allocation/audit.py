"""An independent check of an allocation result against the rules, from the plan and requests alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

from market.domain import (
    AllocationResult,
    DayAllocationInput,
    DayRequest,
    Stall,
    StallFeature,
    preference_points,
    priority_order,
)


@dataclass(frozen=True)
class Violation:
    rule: str
    trader_id: str
    detail: str


class _Day:
    """What the checker needs to know about the day, derived without the allocator's own data structures."""

    def __init__(self, source: DayAllocationInput, result: AllocationResult) -> None:
        self.source = source
        self.result = result
        self.stalls = {stall.number: stall for stall in source.plan.stalls}
        self.segments = source.plan.segments()
        self.where = {n: (s, p) for s, segment in enumerate(self.segments) for p, n in enumerate(segment)}
        self.requests = {request.trader_id: request for request in source.requests}
        self.rank = {
            t: r for r, t in enumerate(priority_order(source.requests, source.regulation, source.seed))
        }
        self.owner = {n: t for t, stalls in result.assignments.items() for n in stalls}
        self.keeping = {
            t: r
            for t, r in self.requests.items()
            if r.own_stalls and not r.ineligible_reason and self.available(r.own_stalls)
        }
        self.caps = dict(source.regulation.quotas)
        for request in self.keeping.values():
            if request.specialisation in self.caps:
                self.caps[request.specialisation] -= len(request.own_stalls)
        self.usage: Counter[str] = Counter()
        for trader_id, stalls in result.assignments.items():
            self.usage[self.spec(trader_id)] += self.counted(trader_id, len(stalls))

    def available(self, stalls: Sequence[str]) -> bool:
        return all(n in self.stalls and n not in self.source.unavailable_stalls for n in stalls)

    def spec(self, trader_id: str) -> str:
        return self.requests[trader_id].specialisation or ""

    def counted(self, trader_id: str, size: int) -> int:
        exempt = len(self.requests[trader_id].own_stalls) if trader_id in self.keeping else 0
        return max(0, size - exempt)

    def quota_room(self, trader_id: str, extra: int) -> bool:
        spec = self.spec(trader_id)
        return spec not in self.caps or self.usage[spec] + extra <= max(0, self.caps[spec])

    def fits(self, request: DayRequest, number: str) -> bool:
        stall: Stall = self.stalls[number]
        if number in self.source.unavailable_stalls or not request.needs <= stall.features:
            return False
        return request.anywhere or not request.preferred_stalls or number in request.preferred_stalls

    def matches(self, request: DayRequest, stalls: Sequence[str]) -> bool:
        """Whether a run holds a special stall that goes first to this trader."""
        for number in stalls:
            stall = self.stalls[number]
            if request.specialisation is not None and stall.specialisation == request.specialisation:
                return True
            if any(f in stall.features and f in request.needs for f in (StallFeature.FOOD, StallFeature.EVI)):
                return True
        return False

    def key(self, trader_id: str) -> tuple[int, int]:
        return self.requests[trader_id].priority_group, self.rank[trader_id]

    def contiguous(self, stalls: Sequence[str]) -> bool:
        places = sorted(self.where[n] for n in stalls)
        return len({s for s, _ in places}) == 1 and all(b[1] == a[1] + 1 for a, b in pairwise(places))


def audit(source: DayAllocationInput, result: AllocationResult) -> list[Violation]:
    """Every rule the result breaks; an empty list for a correct allocation."""
    day = _Day(source, result)
    return [*_outcomes(day), *_runs(day), *_quotas(day), *_holders(day), *_priority(day), *_expansion(day)]


def _outcomes(day: _Day) -> Iterator[Violation]:
    assigned, rejected = set(day.result.assignments), set(day.result.rejections)
    for trader_id in day.requests:
        if (trader_id in assigned) == (trader_id in rejected):
            yield Violation("one_outcome", trader_id, "needs exactly one of stalls or a rejection")
    for trader_id in (assigned | rejected) - day.requests.keys():
        yield Violation("one_outcome", trader_id, "outcome for a trader who did not ask")
    given = Counter(n for stalls in day.result.assignments.values() for n in stalls)
    for number, times in given.items():
        if times > 1:
            yield Violation("stall_once", day.owner[number], f"stall {number} given {times} times")


def _runs(day: _Day) -> Iterator[Violation]:
    for trader_id, stalls in day.result.assignments.items():
        request = day.requests.get(trader_id)
        if request is None:
            continue
        if request.ineligible_reason:
            yield Violation("eligibility", trader_id, "an ineligible trader got stalls")
        if not stalls or not day.available(stalls) or not day.contiguous(stalls):
            yield Violation("contiguous_run", trader_id, f"{stalls} is not one run of free adjacent stalls")
            continue
        lowest = len(request.own_stalls) if trader_id in day.keeping else request.min_stalls
        if not lowest <= len(stalls) <= max(lowest, request.max_stalls):
            yield Violation(
                "stall_count", trader_id, f"{len(stalls)} stalls outside {lowest}-{request.max_stalls}"
            )
        for number in stalls:
            if number not in request.own_stalls and not day.fits(request, number):
                yield Violation("stall_fit", trader_id, f"stall {number} lacks a need or is not preferred")


def _quotas(day: _Day) -> Iterator[Violation]:
    for spec, cap in day.caps.items():
        if day.usage[spec] > max(0, cap):
            yield Violation("quota", spec, f"{day.usage[spec]} stalls above the quota's {max(0, cap)}")


def _holders(day: _Day) -> Iterator[Violation]:
    locked = {n: t for t, r in day.keeping.items() for n in r.own_stalls}
    for trader_id, request in day.keeping.items():
        stalls = day.result.assignments.get(trader_id, ())
        if set(request.own_stalls) <= set(stalls):
            continue
        moved = (
            request.wants_move
            and len(stalls) == len(request.own_stalls)
            and all(n in request.preferred_stalls and locked.get(n, trader_id) == trader_id for n in stalls)
        )
        if not moved:
            yield Violation("holder_first", trader_id, "a present holder lost an own stall")


def _priority(day: _Day) -> Iterator[Violation]:
    """Nobody is left out while a free run, or one held by a trader with less right to it, would fit them."""
    for trader_id in day.result.rejections:
        request = day.requests.get(trader_id)
        if request is None or request.ineligible_reason:
            continue
        for run in _runs_for(day, request):
            found = _displacement(day, trader_id, run)
            if found is not None:
                yield found
                break


def _runs_for(day: _Day, request: DayRequest) -> Iterator[tuple[str, ...]]:
    size = request.min_stalls
    for segment in day.segments:
        for start in range(len(segment) - size + 1):
            run = segment[start : start + size]
            if all(day.fits(request, n) and day.owner.get(n) not in day.keeping for n in run):
                yield run


def _displacement(day: _Day, trader_id: str, run: tuple[str, ...]) -> Violation | None:
    request = day.requests[trader_id]
    occupants = {day.owner[n] for n in run if n in day.owner}
    if len(occupants) > 1:
        return None
    if not occupants:
        if day.quota_room(trader_id, day.counted(trader_id, len(run))):
            return Violation("placed_when_free", trader_id, f"free run {run} was not given")
        return None
    other = occupants.pop()
    freed = (
        day.counted(other, len(day.result.assignments[other]))
        if day.spec(other) == day.spec(trader_id)
        else 0
    )
    if not day.quota_room(trader_id, len(run) - freed):
        return None
    mine, theirs = day.matches(request, run), day.matches(day.requests[other], day.result.assignments[other])
    if mine and not theirs:
        return Violation("special_first", trader_id, f"special stalls {run} went to {other}")
    if mine == theirs and day.key(trader_id) < day.key(other):
        return Violation("priority_order", trader_id, f"{other} with lower priority holds {run}")
    return None


def _expansion(day: _Day) -> Iterator[Violation]:
    """Nobody stops short of their maximum next to a free stall or next to someone two stalls ahead."""
    for trader_id, stalls in day.result.assignments.items():
        request = day.requests.get(trader_id)
        if request is None or len(stalls) >= request.max_stalls or not day.contiguous(stalls):
            continue
        if trader_id in day.keeping and not set(request.own_stalls) <= set(stalls):
            continue
        for number in _neighbours(day, stalls):
            if not day.fits(request, number) or not day.quota_room(trader_id, 1):
                continue
            other = day.owner.get(number)
            if other is None:
                yield Violation("expansion", trader_id, f"free stall {number} next to the run")
                break
            if _can_give_up(day, other, number, len(stalls)):
                yield Violation("expansion_rounds", trader_id, f"{other} has 2 or more stalls more")
                break


def _neighbours(day: _Day, stalls: Sequence[str]) -> list[str]:
    places = sorted(day.where[n] for n in stalls)
    segment = day.segments[places[0][0]]
    first, last = places[0][1], places[-1][1]
    return [segment[p] for p in (first - 1, last + 1) if 0 <= p < len(segment)]


def _can_give_up(day: _Day, trader_id: str, number: str, size: int) -> bool:
    """Whether a trader two or more stalls ahead could hand over an end stall without losing their place."""
    request = day.requests[trader_id]
    stalls = day.result.assignments[trader_id]
    lowest = len(request.own_stalls) if trader_id in day.keeping else request.min_stalls
    ordered = sorted(stalls, key=lambda n: day.where[n])
    rest = [n for n in stalls if n != number]
    return (
        number in (ordered[0], ordered[-1])
        and number not in request.own_stalls
        and len(stalls) >= size + 2
        and len(rest) >= lowest
        and _best_place(request, rest) == _best_place(request, stalls)
    )


def _best_place(request: DayRequest, stalls: Sequence[str]) -> int:
    return max((preference_points(request, (n,)) for n in stalls), default=0)
