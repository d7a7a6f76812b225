"""The Solomon and Gehring-Homberger parser on the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from logistics.instances import InstanceFormatError, load_instance, parse_instance, routing_problem


@pytest.mark.parametrize(
    ("path", "customers", "vehicles", "capacity"),
    [
        ("solomon/C101.txt", 100, 25, 200),
        ("solomon/C201.txt", 100, 25, 700),
        ("solomon/R101.txt", 100, 25, 200),
        ("solomon/R201.txt", 100, 25, 1000),
        ("solomon/RC101.txt", 100, 25, 200),
        ("solomon/RC201.txt", 100, 25, 1000),
        ("homberger/c1_2_1.txt", 200, 50, 200),
        ("homberger/r1_2_1.txt", 200, 50, 200),
        ("homberger/r1_4_1.txt", 400, 100, 200),
        ("homberger/rc1_10_1.txt", 1000, 250, 200),
    ],
)
def test_shipped_instances_parse(
    vrp_data: Path, path: str, customers: int, vehicles: int, capacity: int
) -> None:
    instance = load_instance(vrp_data / path)
    assert len(instance.customers) == customers + 1
    assert (instance.vehicles, instance.capacity) == (vehicles, capacity)
    assert instance.depot.number == 0 and instance.depot.demand == 0


def test_r101_reads_its_first_customer_and_horizon(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    first = instance.customers[1]
    assert (first.x, first.y, first.demand, first.ready, first.due, first.service) == (
        41,
        49,
        10,
        161,
        171,
        10,
    )
    assert instance.depot.due == 230
    assert instance.distance(0, 1) == pytest.approx((6**2 + 14**2) ** 0.5)


def test_integer_problem_scales_times_and_rounds_travel_up(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    problem = routing_problem(instance, scale=1000)
    assert problem.nodes[1].windows == ((161_000, 171_000),)
    assert problem.duration[0][0][1] >= instance.distance(0, 1) * 1000
    assert len(problem.vehicles) == 25


def test_text_that_is_not_an_instance_is_refused() -> None:
    with pytest.raises(InstanceFormatError):
        parse_instance("hello\nworld\n")
