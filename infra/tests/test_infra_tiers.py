"""In CI a skipped infrastructure test fails the run; locally it stays a skip."""

import pytest

SKIPPING_TESTS = """
import pytest

@pytest.mark.kafka
def test_needs_kafka():
    pytest.skip("no broker here")

@pytest.mark.postgres
def test_needs_postgres():
    pytest.skip("no server here")

def test_plain_skip_is_fine():
    pytest.skip("unrelated")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["cityblocks.testing"]')
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    kafka: k\n    postgres: p\n"
    )
    pytester.makepyfile(SKIPPING_TESTS)
    return pytester


def test_skipped_infra_tests_fail_when_infra_is_required(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYBLOCKS_REQUIRE_INFRA", "1")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(["*skipped while CITYBLOCKS_REQUIRE_INFRA=1: no broker here*"])


def test_skipped_infra_tests_stay_skips_locally(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CITYBLOCKS_REQUIRE_INFRA", raising=False)
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
