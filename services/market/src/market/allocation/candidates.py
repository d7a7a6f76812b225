"""Candidate runs per trader for the two solves, pruned so a 2,000-stall day stays within seconds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from market.allocation.problem import Problem, Role, Run, Trader

# Beyond the preferred runs, "anywhere" traders see a share of the other runs: the least wanted stalls,
# rotated per trader so they do not all compete for the same few. The shares keep the models near these
# sizes: a small market gets every run, a 2,000-stall day a few per trader and length.
OTHER_RUNS_PLACEMENT = 1_500
OTHER_RUNS_FINAL = 4_000
MIN_OTHER_RUNS = 2


class Candidates:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        demand: Counter[int] = Counter()
        for trader in problem.traders:
            demand.update(trader.preferred)
        self.demand = demand
        self._windows: dict[tuple[frozenset[int], int], list[Run]] = {}
        applicants = sum(1 for t in problem.traders if t.role in (Role.APPLICANT, Role.DISPLACED))
        self.placement_budget = max(MIN_OTHER_RUNS, OTHER_RUNS_PLACEMENT // max(1, applicants))
        self.final_budget = max(MIN_OTHER_RUNS, OTHER_RUNS_FINAL // max(1, applicants))

    def all_windows(self, trader: Trader, length: int) -> list[Run]:
        key = (trader.usable, length)
        if key not in self._windows:
            runs = self.problem.windows(trader.usable, length)
            runs.sort(key=lambda run: (sum(self.demand[i] for i in run), run))
            self._windows[key] = runs
        return self._windows[key]

    def preferred(self, trader: Trader, length: int) -> set[Run]:
        problem = self.problem
        return {
            run
            for stall in trader.preferred
            if stall in trader.usable
            for run in problem.windows_through(stall, trader.usable, length)
        }

    def others(self, trader: Trader, length: int, budget: int) -> list[Run]:
        runs = self.all_windows(trader, length)
        if len(runs) <= budget:
            return runs
        pool = min(len(runs), budget * 8)
        offset = (trader.rank * 7919) % pool
        return [runs[(offset + j) % pool] for j in range(budget)]

    def placement(self, trader: Trader, extra: Iterable[Run] = ()) -> list[Run]:
        """Minimum-length runs: enough to decide who is placed."""
        if trader.role is Role.HOLDER:
            return sorted({trader.own, *trader.moves})
        length = trader.min_len
        runs = self.preferred(trader, length) | set(self.others(trader, length, self.placement_budget))
        runs.update(run for run in extra if len(run) == length)
        return sorted(runs)

    def final(self, trader: Trader, placed: Run, extra: Iterable[Run] = ()) -> list[Run]:
        """Runs of every allowed length for a placed trader, always including growth of its placed run."""
        runs = {placed, *extra}
        if trader.role is Role.HOLDER:
            # A holder grows around the own stalls; a move is to a place of the same size.
            runs.update(trader.moves, self._growth(trader, trader.own))
            return sorted(runs)
        runs.update(self._growth(trader, placed))
        for length in range(trader.min_len, trader.max_len + 1):
            runs.update(self.preferred(trader, length))
            runs.update(self.others(trader, length, self.final_budget))
        return sorted(runs)

    def _growth(self, trader: Trader, placed: Run) -> set[Run]:
        frontier, found = {placed}, set()
        for _ in range(len(placed), trader.max_len):
            frontier = {bigger for run in frontier for bigger in self.problem.grown(run, trader.usable)}
            found |= frontier
        return found
