"""List walks over the traders in priority order: the greedy baseline and the solver's final fill."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from market.allocation.problem import Problem, Role, Run, Trader


@dataclass
class State:
    """Runs given so far, by trader rank, with the stalls and quota they use."""

    problem: Problem
    runs: dict[int, Run] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)
    usage: dict[str, int] = field(default_factory=dict)

    def quota_allows(self, trader: Trader, run: Run, replacing: Run = ()) -> bool:
        spec = trader.request.specialisation
        if spec not in self.problem.quota_cap:
            return True
        extra = max(0, len(run) - trader.exempt) - max(0, len(replacing) - trader.exempt)
        return self.usage.get(spec, 0) + extra <= self.problem.quota_cap[spec]

    def place(self, trader: Trader, run: Run) -> None:
        self.remove(trader)
        self.runs[trader.rank] = run
        self.taken.update(run)
        spec = trader.request.specialisation
        if spec is not None:
            self.usage[spec] = self.usage.get(spec, 0) + max(0, len(run) - trader.exempt)

    def remove(self, trader: Trader) -> None:
        old = self.runs.pop(trader.rank, ())
        self.taken.difference_update(old)
        spec = trader.request.specialisation
        if old and spec is not None:
            self.usage[spec] -= max(0, len(old) - trader.exempt)

    def free_for(self, trader: Trader) -> frozenset[int]:
        return frozenset(trader.usable - self.taken)


def holders_state(problem: Problem) -> State:
    state = State(problem)
    for trader in problem.traders:
        if trader.role is Role.HOLDER:
            state.place(trader, trader.own)
    return state


def move_holders(state: State) -> None:
    """Holders asking to move take their best free preferred run, in priority order."""
    for trader in state.problem.traders:
        if not trader.moves:
            continue
        options = [run for run in trader.moves if state.taken.isdisjoint(run)]
        current = state.problem.stall_points(trader, state.runs[trader.rank])
        best = max(options, key=lambda run: state.problem.stall_points(trader, run), default=None)
        if best is not None and state.problem.stall_points(trader, best) > current:
            state.place(trader, best)


def best_free_run(state: State, trader: Trader, length: int, *, must_match: bool = False) -> Run | None:
    """The run a list walk gives: most preference points, else the first free one sparing special stalls."""
    problem = state.problem
    free = state.free_for(trader)
    matches = problem.matches[trader.rank]
    preferred = [
        run
        for stall in trader.preferred
        if stall in free
        for run in problem.windows_through(stall, free, length)
        if state.quota_allows(trader, run) and (not must_match or not matches.isdisjoint(run))
    ]
    if preferred:
        return max(
            preferred,
            key=lambda run: (
                problem.location_points(trader, run),
                problem.stall_points(trader, run),
                -run[0],
            ),
        )
    if must_match:
        candidates: Iterable[Run] = (
            run for stall in sorted(matches & free) for run in problem.windows_through(stall, free, length)
        )
        return next((run for run in candidates if state.quota_allows(trader, run)), None)
    return _first_window(state, trader, free, length)


def _first_window(state: State, trader: Trader, free: frozenset[int], length: int) -> Run | None:
    problem = state.problem
    fallback = None
    for segment in problem.segments:
        stretch: list[int] = []
        for index in [*segment, -1]:
            if index in free:
                stretch.append(index)
                continue
            for start in range(len(stretch) - length + 1):
                run = tuple(stretch[start : start + length])
                if not state.quota_allows(trader, run):
                    return None
                if not any(problem.is_special_stall[i] for i in run):
                    return run
                fallback = fallback or run
            stretch = []
    return fallback


def place_in_order(state: State, traders: Iterable[Trader]) -> None:
    """Give each unplaced trader, in priority order, the minimum run: matching special stalls first."""
    waiting = [t for t in traders if t.role in (Role.APPLICANT, Role.DISPLACED) and t.rank not in state.runs]
    for trader in waiting:
        if state.problem.matches[trader.rank]:
            run = best_free_run(state, trader, trader.min_len, must_match=True)
            if run is not None:
                state.place(trader, run)
    for trader in waiting:
        if trader.rank not in state.runs:
            run = best_free_run(state, trader, trader.min_len)
            if run is not None:
                state.place(trader, run)


def grow_in_rounds(state: State) -> None:
    """Expansion rounds: one more adjacent stall per trader per round, nobody k+1 before all k."""
    problem = state.problem
    longest = max((t.max_len for t in problem.traders), default=1)
    for size in range(2, longest + 1):
        for trader in problem.traders:
            run = state.runs.get(trader.rank)
            if run is None or len(run) != size - 1 or trader.max_len < size:
                continue
            if trader.role is Role.HOLDER and not set(trader.own) <= set(run):
                continue
            options = [
                r for r in problem.grown(run, state.free_for(trader)) if state.quota_allows(trader, r, run)
            ]
            if options:
                state.place(trader, max(options, key=lambda r: (problem.stall_points(trader, r), -r[0])))


def greedy_state(problem: Problem) -> State:
    state = holders_state(problem)
    move_holders(state)
    place_in_order(state, problem.traders)
    return state


def repair_priorities(state: State) -> None:
    """Let a waiting trader take the run of one placed trader with less right to it, as often as that helps.

    Only the placement solve's time limit can leave such a pair; each swap strictly improves the placement
    objective, so the loop ends.
    """
    problem = state.problem
    changed = True
    while changed:
        changed = False
        for trader in problem.traders:
            if trader.rank in state.runs or trader.role not in (Role.APPLICANT, Role.DISPLACED):
                continue
            displaced = _displace(state, trader)
            if displaced is not None:
                run = best_free_run(state, displaced, displaced.min_len)
                if run is not None:
                    state.place(displaced, run)
                changed = True


def _displace(state: State, trader: Trader) -> Trader | None:
    problem = state.problem
    owner = {stall: rank for rank, run in state.runs.items() for stall in run}
    for run in problem.windows(trader.usable, trader.min_len):
        holders = {owner[i] for i in run if i in owner}
        if len(holders) != 1:
            continue
        other = problem.traders[holders.pop()]
        if other.role is Role.HOLDER or not _outranks(state, trader, run, other):
            continue
        old = state.runs[other.rank]
        state.remove(other)
        if state.quota_allows(trader, run):
            state.place(trader, run)
            return other
        state.place(other, old)
    return None


def _outranks(state: State, trader: Trader, run: Run, other: Trader) -> bool:
    """Special stalls to matching traders first, then priority group, then rank."""
    problem = state.problem
    mine = problem.is_special_match(trader, run)
    theirs = problem.is_special_match(other, state.runs[other.rank])
    if mine != theirs:
        return mine
    return (trader.request.priority_group, trader.rank) < (other.request.priority_group, other.rank)


def relocate(state: State) -> None:
    """Move placed traders to free runs that are better for them: place, then size, then points."""
    problem = state.problem
    for trader in problem.traders:
        current = state.runs.get(trader.rank)
        if current is None or trader.role is Role.HOLDER or not trader.preferred:
            continue
        room = state.free_for(trader) | frozenset(current)
        best, best_value = current, _value(problem, trader, current)
        matching = problem.is_special_match(trader, current)
        for length in range(trader.min_len, trader.max_len + 1):
            for stall in trader.preferred:
                if stall not in room:
                    continue
                for run in problem.windows_through(stall, room, length):
                    value = _value(problem, trader, run)
                    fits = state.quota_allows(trader, run, current)
                    if (
                        value > best_value
                        and fits
                        and (problem.is_special_match(trader, run) or not matching)
                    ):
                        best, best_value = run, value
        if best != current:
            state.place(trader, best)


def _value(problem: Problem, trader: Trader, run: Run) -> tuple[int, int, int]:
    return problem.location_points(trader, run), len(run), problem.stall_points(trader, run)


def rebalance_rounds(state: State) -> None:
    """Hand an end stall from a trader two or more stalls ahead to a neighbour who wanted more.

    Only a time-limited solve leaves such pairs; a handover never costs the giver their best preferred stall.
    """
    problem = state.problem
    changed = True
    while changed:
        changed = False
        owner = {stall: rank for rank, run in state.runs.items() for stall in run}
        for trader in problem.traders:
            run = state.runs.get(trader.rank)
            if run is None or len(run) >= trader.max_len or not set(trader.own) <= set(run):
                continue
            for bigger in problem.grown(run, trader.usable):
                stall = (set(bigger) - set(run)).pop()
                giver = problem.traders[owner[stall]] if stall in owner else None
                if giver is not None and _hand_over(state, giver, stall, trader, bigger):
                    changed = True
                    break
            if changed:
                break


def _hand_over(state: State, giver: Trader, stall: int, taker: Trader, bigger: Run) -> bool:
    problem = state.problem
    run = state.runs[giver.rank]
    rest = run[1:] if run[0] == stall else run[:-1] if run[-1] == stall else None
    if rest is None or stall in giver.own or len(run) < len(bigger) + 1 or len(rest) < giver.min_len:
        return False
    if problem.location_points(giver, rest) < problem.location_points(giver, run):
        return False
    state.place(giver, rest)
    if state.quota_allows(taker, bigger, state.runs[taker.rank]):
        state.place(taker, bigger)
        return True
    state.place(giver, run)
    return False


def reseat(problem: Problem, placed: Mapping[int, Run]) -> State:
    """The same traders on the same number of stalls, each moved in priority order to its best preferred run.

    A trader moves only onto stalls nobody seated before holds and nobody after is to get, and keeps a
    special stall meant for them; the run it was given always stays open to it, so everyone is seated again.
    The placement solve does not look at wishes; this gives the next solve a start that does.
    """
    state = State(problem)
    pending = {stall for run in placed.values() for stall in run}
    for trader in problem.traders:
        run = placed.get(trader.rank)
        if run is None:
            continue
        pending.difference_update(run)
        if trader.role is not Role.HOLDER and trader.preferred:
            free = trader.usable - state.taken - pending
            matching = problem.is_special_match(trader, run)
            options = [
                option
                for stall in trader.preferred
                if stall in free
                for option in problem.windows_through(stall, free, len(run))
                if problem.is_special_match(trader, option) or not matching
            ]
            best = max(options, key=lambda option: _value(problem, trader, option), default=run)
            if _value(problem, trader, best) > _value(problem, trader, run):
                run = best
        state.place(trader, run)
    return state


def swap_for_wishes(state: State) -> None:
    """Two traders on runs of the same length trade places when together they get more preference points.

    Both must be able to stand on the other's run and keep a special stall meant for them; equal lengths keep
    every quota as it was. The traders are taken in priority order, each trying their best wishes first.
    """
    problem = state.problem
    owner = {stall: rank for rank, run in state.runs.items() for stall in run}
    for trader in problem.traders:
        run = state.runs.get(trader.rank)
        if run is None or trader.role is Role.HOLDER:
            continue
        for stall in sorted(trader.preferred, key=trader.preferred.__getitem__):
            if problem.location_points(trader, (stall,)) <= problem.location_points(trader, run):
                break
            other = problem.traders[owner[stall]] if stall in owner else None
            if other is None or other.role is Role.HOLDER or other is trader:
                continue
            theirs = state.runs[other.rank]
            if _gain_of_swap(problem, trader, run, other, theirs) <= 0:
                continue
            state.remove(trader)
            state.remove(other)
            state.place(trader, theirs)
            state.place(other, run)
            owner.update({i: trader.rank for i in theirs} | {i: other.rank for i in run})
            break


def _gain_of_swap(problem: Problem, trader: Trader, run: Run, other: Trader, theirs: Run) -> int:
    if len(run) != len(theirs) or not trader.usable.issuperset(theirs) or not other.usable.issuperset(run):
        return 0
    if problem.is_special_match(trader, run) and not problem.is_special_match(trader, theirs):
        return 0
    if problem.is_special_match(other, theirs) and not problem.is_special_match(other, run):
        return 0
    before = problem.location_points(trader, run) + problem.location_points(other, theirs)
    return problem.location_points(trader, theirs) + problem.location_points(other, run) - before
