"""The allocation problem in index form: stalls, segments and the traders in priority order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from market.domain import (
    DayAllocationInput,
    DayRequest,
    Stall,
    StallFeature,
    priority_order,
)

Run = tuple[int, ...]
SPECIAL_FEATURES = (StallFeature.FOOD, StallFeature.EVI)


class Role(StrEnum):
    INELIGIBLE = "ineligible"
    HOLDER = "holder"
    DISPLACED = "displaced"
    APPLICANT = "applicant"


@dataclass
class Trader:
    """One request with everything the solvers need precomputed as stall indices."""

    request: DayRequest
    rank: int
    role: Role
    usable: frozenset[int]
    own: Run = ()
    preferred: dict[int, int] = field(default_factory=dict)
    moves: tuple[Run, ...] = ()

    @property
    def min_len(self) -> int:
        return len(self.own) if self.role is Role.HOLDER else self.request.min_stalls

    @property
    def max_len(self) -> int:
        return max(self.min_len, self.request.max_stalls)

    @property
    def exempt(self) -> int:
        """Stalls of this trader that do not count against the specialisation quota."""
        return len(self.own) if self.role is Role.HOLDER else 0


@dataclass
class Problem:
    source: DayAllocationInput
    numbers: list[str]
    segment_of: list[int]
    position_of: list[int]
    segments: list[list[int]]
    traders: list[Trader]
    matches: list[frozenset[int]]
    quota_cap: dict[str, int]
    is_special_stall: list[bool] = field(default_factory=list)

    def run_numbers(self, run: Iterable[int]) -> tuple[str, ...]:
        return tuple(self.numbers[i] for i in run)

    def stall_points(self, trader: Trader, run: Run) -> int:
        """Preference points of every stall in the run: the last tie-break, for which extra stalls."""
        ranks = trader.preferred
        return sum(max(1, 10 - ranks[i]) for i in run if i in ranks)

    def location_points(self, trader: Trader, run: Run) -> int:
        """The domain's `preference_points` on stall indices: the points of the best preferred stall."""
        ranks = trader.preferred
        return max((max(1, 10 - ranks[i]) for i in run if i in ranks), default=0)

    def is_special_match(self, trader: Trader, run: Run) -> bool:
        return not self.matches[trader.rank].isdisjoint(run)

    def windows(self, stalls: frozenset[int], length: int) -> list[Run]:
        """Every run of `length` adjacent stalls drawn from `stalls`."""
        runs: list[Run] = []
        for s in sorted({self.segment_of[i] for i in stalls}):
            segment = self.segments[s]
            stretch: list[int] = []
            for index in [*segment, -1]:
                if index in stalls:
                    stretch.append(index)
                    continue
                runs.extend(tuple(stretch[i : i + length]) for i in range(len(stretch) - length + 1))
                stretch = []
        return runs

    def windows_through(self, stall: int, stalls: frozenset[int], length: int) -> list[Run]:
        segment = self.segments[self.segment_of[stall]]
        position = self.position_of[stall]
        runs = []
        for start in range(max(0, position - length + 1), min(position, len(segment) - length) + 1):
            run = tuple(segment[start : start + length])
            if all(i in stalls for i in run):
                runs.append(run)
        return runs

    def grown(self, run: Run, stalls: frozenset[int]) -> list[Run]:
        """Runs one stall longer than `run`, extended at either end into `stalls`."""
        segment = self.segments[self.segment_of[run[0]]]
        first, last = self.position_of[run[0]], self.position_of[run[-1]]
        result = []
        if first > 0 and segment[first - 1] in stalls:
            result.append((segment[first - 1], *run))
        if last + 1 < len(segment) and segment[last + 1] in stalls:
            result.append((*run, segment[last + 1]))
        return result


def build_problem(source: DayAllocationInput) -> Problem:
    segments_by_number = source.plan.segments()
    numbers = [number for segment in segments_by_number for number in segment]
    index = {number: i for i, number in enumerate(numbers)}
    segments, segment_of, position_of = _segments(segments_by_number, index)
    by_number = {stall.number: stall for stall in source.plan.stalls}
    stalls = [by_number[number] for number in numbers]
    available = frozenset(i for i, n in enumerate(numbers) if n not in source.unavailable_stalls)
    by_id = {request.trader_id: request for request in source.requests}
    requests = [
        by_id[trader_id] for trader_id in priority_order(source.requests, source.regulation, source.seed)
    ]
    locked = _locked_stalls(requests, index, available)
    traders = _traders(requests, stalls, index, available, locked)
    special = _special_index(stalls)
    matches = [_matching_stalls(trader.request, special) for trader in traders]
    caps = _quota_caps(source, traders)
    problem = Problem(source, numbers, segment_of, position_of, segments, traders, matches, caps)
    problem.is_special_stall = [stall.is_special for stall in stalls]
    _add_moves(problem, available - locked.keys())
    return problem


def _traders(
    requests: Sequence[DayRequest],
    stalls: Sequence[Stall],
    index: dict[str, int],
    available: frozenset[int],
    locked: dict[int, str],
) -> list[Trader]:
    # Own stalls of a holder asking to move may fall free; the solve decides, so others may be given them.
    movers = {r.trader_id for r in requests if r.wants_move and r.preferred_stalls}
    open_stalls = available - {i for i, owner in locked.items() if owner not in movers}
    by_needs: dict[frozenset[StallFeature], frozenset[int]] = {}
    for request in requests:
        if request.needs not in by_needs:
            by_needs[request.needs] = frozenset(i for i in open_stalls if request.needs <= stalls[i].features)
    return [
        _trader(rank, request, index, by_needs[request.needs], locked)
        for rank, request in enumerate(requests)
    ]


def _segments(
    segments_by_number: Sequence[Sequence[str]], index: dict[str, int]
) -> tuple[list[list[int]], list[int], list[int]]:
    segments = [[index[number] for number in segment] for segment in segments_by_number]
    segment_of = [0] * len(index)
    position_of = [0] * len(index)
    for s, segment in enumerate(segments):
        for p, i in enumerate(segment):
            segment_of[i], position_of[i] = s, p
    return segments, segment_of, position_of


def _locked_stalls(
    requests: Sequence[DayRequest], index: dict[str, int], available: frozenset[int]
) -> dict[int, str]:
    """Own stalls of present holders who keep them: nobody else can be given those."""
    locked: dict[int, str] = {}
    for request in requests:
        own = [index.get(number) for number in request.own_stalls]
        if request.ineligible_reason or not own or any(i is None or i not in available for i in own):
            continue
        for i in own:
            if i is not None:
                locked[i] = request.trader_id
    return locked


def _trader(
    rank: int,
    request: DayRequest,
    index: dict[str, int],
    fits: frozenset[int],
    locked: dict[int, str],
) -> Trader:
    preferred = {index[n]: r for r, n in enumerate(request.preferred_stalls) if n in index}
    usable = fits & frozenset(preferred) if preferred and not request.anywhere else fits
    if request.ineligible_reason is not None:
        return Trader(request, rank, Role.INELIGIBLE, frozenset(), preferred=preferred)
    own = tuple(sorted(i for i, owner in locked.items() if owner == request.trader_id))
    if request.own_stalls and len(own) == len(request.own_stalls):
        return Trader(request, rank, Role.HOLDER, usable | frozenset(own), own=own, preferred=preferred)
    role = Role.DISPLACED if request.own_stalls else Role.APPLICANT
    return Trader(request, rank, role, usable, preferred=preferred)


def _add_moves(problem: Problem, free: frozenset[int]) -> None:
    """Preferred runs a holder asking to move may take: only free stalls, so no other holder loses a place."""
    stalls = problem.source.plan.stalls
    by_number = {stall.number: stall for stall in stalls}
    for trader in problem.traders:
        if trader.role is not Role.HOLDER or not trader.request.wants_move or not trader.preferred:
            continue
        targets = frozenset(
            i
            for i in trader.preferred
            if i in free and trader.request.needs <= by_number[problem.numbers[i]].features
        )
        runs = {run for i in targets for run in problem.windows_through(i, targets, len(trader.own))}
        trader.moves = tuple(sorted(runs))


def _special_index(stalls: Sequence[Stall]) -> dict[object, frozenset[int]]:
    """Special stalls by specialisation and by the food/EVI feature, to look up a trader's matches quickly."""
    found: dict[object, set[int]] = defaultdict(set)
    for i, stall in enumerate(stalls):
        if stall.specialisation is not None:
            found[stall.specialisation].add(i)
        for feature in SPECIAL_FEATURES:
            if feature in stall.features:
                found[feature].add(i)
    return {key: frozenset(value) for key, value in found.items()}


def _matching_stalls(request: DayRequest, special: dict[object, frozenset[int]]) -> frozenset[int]:
    """Special stalls that go first to this trader: their specialisation or a food/EVI stall they need."""
    keys: list[object] = [request.specialisation, *(f for f in SPECIAL_FEATURES if f in request.needs)]
    return frozenset().union(*(special.get(key, frozenset()) for key in keys if key is not None))


def _quota_caps(source: DayAllocationInput, traders: Sequence[Trader]) -> dict[str, int]:
    """Stalls left per specialisation once holders' own stalls (always allowed) are counted."""
    caps = dict(source.regulation.quotas)
    for trader in traders:
        spec = trader.request.specialisation
        if trader.role is Role.HOLDER and spec in caps:
            caps[spec] -= len(trader.own)
    return {spec: max(0, cap) for spec, cap in caps.items()}
