import importlib.util
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from market.allocation import allocate
from market.allocation.audit import audit
from market.greedy import allocate_greedy

BENCH = Path(__file__).resolve().parents[3] / "bench" / "market_allocation.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("market_allocation_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2024, 7])
def test_dappermarkt_size_day_is_solved_optimally_and_beats_greedy(seed: int) -> None:
    bench = load_bench()
    source = replace(
        bench.generate_day(stalls=237, rows=70, traders=124, preferences=1600, seed=seed), time_limit_s=5.0
    )
    exact, greedy = allocate(source), allocate_greedy(source)
    assert exact.optimal
    assert audit(source, exact) == []
    for group, count in greedy.placed_per_group.items():
        assert exact.placed_per_group.get(group, 0) >= count
    assert exact.preference_score >= greedy.preference_score
    assert set(exact.assignments) | set(exact.rejections) == {r.trader_id for r in source.requests}
    assert allocate(source).assignments == exact.assignments
