"""pytest (rootdir-relative imports, no __init__.py in tests/unit and tests/integration) refuses
two test modules of one name anywhere under tests/: the whole run stops at collection. Caught
here, in the unit run, rather than by the full run."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
