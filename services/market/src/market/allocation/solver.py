"""The exact allocator: two CP-SAT solves over candidate runs with lexicographic, stage-preserving weights."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from market.allocation.candidates import Candidates
from market.allocation.problem import Problem, Role, Run, Trader
from market.allocation.walk import State, greedy_state, grow_in_rounds, reseat, swap_for_wishes

log = logging.getLogger(__name__)

SOLVER_SEED = 20240401
PLACEMENT_SHARE = 0.3
# Measured on the 2-core reference machine: a unit of CP-SAT deterministic time took about 4.5 s of wall time.
SECONDS_PER_DETERMINISTIC_UNIT = 4.5


@dataclass
class Solved:
    state: State
    optimal: bool
    candidate_runs: int


def solve(problem: Problem, deadline: float) -> Solved:
    """Both solves, finishing by `deadline` (a `time.monotonic()` value)."""
    candidates = Candidates(problem)
    start = greedy_state(problem)
    placed, optimal_1, size_1 = _placement(problem, candidates, start, deadline)
    hint = reseat(problem, placed)
    swap_for_wishes(hint)
    special = sum(
        problem.is_special_match(problem.traders[r], run)
        for r, run in placed.items()
        if problem.traders[r].role is not Role.HOLDER
    )
    grow_in_rounds(hint)
    final, optimal_2, size_2 = _expansion(problem, candidates, placed, hint, special, deadline)
    state = State(problem)
    for rank, run in final.items():
        state.place(problem.traders[rank], run)
    return Solved(state, optimal_1 and optimal_2, size_1 + size_2)


def _remaining(deadline: float) -> float:
    return max(0.05, deadline - time.monotonic())


class _Model:
    """Run variables and what both solves share: one run per trader, one trader per stall, quotas."""

    def __init__(self, problem: Problem, runs: Mapping[int, Sequence[Run]]) -> None:
        self.problem = problem
        self.model = cp_model.CpModel()
        self.vars: dict[int, list[tuple[Run, cp_model.IntVar]]] = {}
        by_stall: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        by_spec: dict[str, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        for rank, options in runs.items():
            trader = problem.traders[rank]
            pairs = [(run, self.model.new_bool_var(f"x{rank}_{n}")) for n, run in enumerate(options)]
            self.vars[rank] = pairs
            for run, var in pairs:
                for stall in run:
                    by_stall[stall].append(var)
                spec = trader.request.specialisation
                if spec in problem.quota_cap and len(run) > trader.exempt:
                    by_spec[spec].append((len(run) - trader.exempt, var))
        for stall_vars in by_stall.values():
            if len(stall_vars) > 1:
                self.model.add_at_most_one(stall_vars)
        for spec, terms in by_spec.items():
            self.model.add(
                cp_model.LinearExpr.weighted_sum([v for _, v in terms], [n for n, _ in terms])
                <= problem.quota_cap[spec]
            )

    def special_count(self) -> cp_model.LinearExpr:
        problem = self.problem
        return sum(
            (
                var
                for rank, pairs in self.vars.items()
                if problem.traders[rank].role is not Role.HOLDER
                for run, var in pairs
                if problem.is_special_match(problem.traders[rank], run)
            ),
            cp_model.LinearExpr.constant(0),
        )

    def floor_each_group(self, walk: Mapping[int, Run]) -> None:
        """At least the walk's special matches and, in every priority group, at least as many placed."""
        problem = self.problem
        floors: Counter[int] = Counter()
        members: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        for rank, pairs in self.vars.items():
            trader = problem.traders[rank]
            if trader.role is not Role.HOLDER:
                floors[trader.request.priority_group] += rank in walk
                members[trader.request.priority_group].extend(var for _, var in pairs)
        for group, count in sorted(floors.items()):
            self.model.add(cp_model.LinearExpr.sum(members[group]) >= count)
        self._floor_special(walk)

    def floor_priority_order(self, walk: Mapping[int, Run], weights: Mapping[int, int]) -> None:
        """At least the walk's special matches, and a placement at least as good as the walk's by priority
        group, then seniority or lottery (the objective's weights): a group may lose only to a higher one."""
        terms = [
            (var, weights[rank]) for rank, pairs in self.vars.items() if rank in weights for _, var in pairs
        ]
        self.model.add(
            cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [w for _, w in terms])
            >= sum(weights[rank] for rank in walk if rank in weights)
        )
        self._floor_special(walk)

    def _floor_special(self, walk: Mapping[int, Run]) -> None:
        problem = self.problem
        special = sum(
            problem.is_special_match(problem.traders[rank], run)
            for rank, run in walk.items()
            if rank in self.vars and problem.traders[rank].role is not Role.HOLDER
        )
        self.model.add(self.special_count() >= special)

    def maximise(self, value: Callable[[int, Run], int]) -> None:
        self.value = value
        terms = [(var, value(rank, run)) for rank, pairs in self.vars.items() for run, var in pairs]
        self.model.maximize(cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [c for _, c in terms]))

    def solve(
        self, deadline: float, fallback: Mapping[int, Run], *, share: float = 1.0
    ) -> tuple[dict[int, Run], bool]:
        """The best solution found, starting from `fallback` (feasible), which is kept if nothing beats it.

        The time limit is `share` of what is left before `deadline` once the model is built, so that building
        a large model does not push the whole allocation past its budget.
        """
        for rank, pairs in self.vars.items():
            for run, var in pairs:
                self.model.add_hint(var, run == fallback.get(rank))
        solver = cp_model.CpSolver()
        # Presolve weakens the LP bound on this set-packing model; one worker keeps the result reproducible.
        solver.parameters.cp_model_presolve = False
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = SOLVER_SEED
        # The hint is a complete solution: take it as the first incumbent, without the hint-guided dive that
        # otherwise spends most of a short budget re-deriving it before the LP-guided search starts.
        solver.parameters.hint_conflict_limit = 0
        # The deterministic limit makes a time-limited result reproducible; the wall limit still holds when
        # the machine is so loaded that the deterministic budget would overrun it.
        time_limit_s = _remaining(deadline) * share
        solver.parameters.max_deterministic_time = time_limit_s / SECONDS_PER_DETERMINISTIC_UNIT
        solver.parameters.max_time_in_seconds = time_limit_s
        status = solver.solve(self.model)
        log.debug(
            "cp-sat %s in %.2fs (deterministic %.2f): objective %s, bound %s, fallback %s, %d variables",
            solver.status_name(status),
            solver.wall_time,
            solver.deterministic_time,
            solver.objective_value,
            solver.best_objective_bound,
            self.total(fallback),
            sum(len(p) for p in self.vars.values()),
        )
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return dict(fallback), False
        chosen = {
            rank: run for rank, pairs in self.vars.items() for run, var in pairs if solver.boolean_value(var)
        }
        if self.total(chosen) < self.total(fallback):
            return dict(fallback), False
        return chosen, status == cp_model.OPTIMAL

    def total(self, chosen: Mapping[int, Run]) -> int:
        return sum(self.value(rank, run) for rank, run in chosen.items() if rank in self.vars)


def _placement(
    problem: Problem, candidates: Candidates, start: State, deadline: float
) -> tuple[dict[int, Run], bool, int]:
    """Who gets a place: special stalls to matching traders, then priority group, then seniority/lottery.

    The objective ranks a special match above every group, so floors taken from the list walk keep it from
    buying a special match with a placement the walk made legally in a group. Under a time limit the floors
    are per group: whatever the solve returns places at least as many in every group as the walk. Once that
    is proven optimal, a second solve may still trade a lower group's placement for a higher group's (the
    rules ask for that); it is taken, and the placement called optimal, only when proven optimal too.
    """
    start_runs = {rank: run[: problem.traders[rank].min_len] for rank, run in start.runs.items()}
    runs = {
        t.rank: candidates.placement(t, [start_runs[t.rank]] if t.rank in start_runs else [])
        for t in problem.traders
        if t.role is not Role.INELIGIBLE
    }
    runs = {rank: options for rank, options in runs.items() if options}
    weights, special_weight = _placement_weights([problem.traders[rank] for rank in runs])
    per_group = _placement_model(problem, runs, weights, special_weight)
    per_group.floor_each_group(start_runs)
    chosen, optimal = per_group.solve(deadline, start_runs, share=PLACEMENT_SHARE)
    size = sum(len(p) for p in per_group.vars.values())
    if optimal:
        by_order = _placement_model(problem, runs, weights, special_weight)
        by_order.floor_priority_order(start_runs, weights)
        better, optimal = by_order.solve(deadline, chosen, share=PLACEMENT_SHARE)
        if optimal:
            chosen = better
    return chosen, optimal, size


def _placement_model(
    problem: Problem, runs: Mapping[int, Sequence[Run]], weights: Mapping[int, int], special_weight: int
) -> _Model:
    model = _Model(problem, runs)
    for rank, pairs in model.vars.items():
        if problem.traders[rank].role is Role.HOLDER:
            model.model.add_exactly_one(var for _, var in pairs)
        else:
            model.model.add_at_most_one(var for _, var in pairs)

    def value(rank: int, run: Run) -> int:
        trader = problem.traders[rank]
        if trader.role is Role.HOLDER:
            return 0
        return weights[rank] + special_weight * problem.is_special_match(trader, run)

    model.maximise(value)
    return model


def _placement_weights(traders: Sequence[Trader]) -> tuple[dict[int, int], int]:
    """Weights that make the placement objective lexicographic: group, then count, then rank as tie-break.

    A placement in a group outweighs every possible change in the groups below it; the bound per group is its
    number of traders, which keeps the coefficients far inside int64.
    """
    groups: dict[int, list[Trader]] = defaultdict(list)
    for trader in traders:
        if trader.role is not Role.HOLDER:
            groups[trader.request.priority_group].append(trader)
    weights: dict[int, int] = {}
    below = 0
    for group in sorted(groups, reverse=True):
        members = sorted(groups[group], key=lambda t: t.rank)
        size = len(members)
        base = below + size + 1
        for position, trader in enumerate(members):
            weights[trader.rank] = base + size - position
        below += size * (base + size)
    return weights, below + 1


def _expansion(
    problem: Problem,
    candidates: Candidates,
    placed: Mapping[int, Run],
    hint: State,
    special: int,
    deadline: float,
) -> tuple[dict[int, Run], bool, int]:
    """Where and how many stalls: the preferred place first, then sizes in rounds, then points of every stall.

    As in a list walk the place comes first: extra stalls are added next to it, never bought with it.
    """
    runs = {
        rank: candidates.final(problem.traders[rank], run, [hint.runs[rank]]) for rank, run in placed.items()
    }
    model = _Model(problem, runs)
    for pairs in model.vars.values():
        model.model.add_exactly_one(var for _, var in pairs)
    model.model.add(model.special_count() >= special)
    size_weight = _size_weights(problem, runs)
    place_weight = 1 + size_weight[max(size_weight)] * len(runs) + _points_bound(problem, runs)

    def value(rank: int, run: Run) -> int:
        trader = problem.traders[rank]
        place = place_weight * problem.location_points(trader, run)
        return place + size_weight[len(run)] + problem.stall_points(trader, run)

    model.maximise(value)
    chosen, optimal = model.solve(deadline, hint.runs)
    return chosen, optimal, sum(len(p) for p in model.vars.values())


def _size_weights(problem: Problem, runs: Mapping[int, Sequence[Run]]) -> dict[int, int]:
    """Cumulative weight of a run of each length: reaching size k outweighs everything at sizes above k."""
    points = _points_bound(problem, runs)
    longest = max((len(run) for options in runs.values() for run in options), default=1)
    step = {longest + 1: 0}
    bound = points
    for size in range(longest, 1, -1):
        reaching = sum(1 for options in runs.values() if any(len(run) >= size for run in options))
        step[size] = bound + 1
        bound += reaching * step[size]
    cumulative = {1: 0}
    for size in range(2, longest + 1):
        cumulative[size] = cumulative[size - 1] + step[size]
    return cumulative


def _points_bound(problem: Problem, runs: Mapping[int, Sequence[Run]]) -> int:
    return sum(
        max((problem.stall_points(problem.traders[r], run) for run in options), default=0)
        for r, options in runs.items()
    )
