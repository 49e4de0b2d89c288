"""Integration tests need root, Open vSwitch, Mininet and tshark. In CI (CI set) a missing piece is
a failure; elsewhere the tests skip and say what is missing."""

import os
import shutil

import pytest


def missing_requirements() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("ovs-vswitchd", "ovsdb-server", "mnexec", "tshark", "ethtool", "ping"):
        if shutil.which(tool) is None:
            missing.append(tool)
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        missing.append("the mininet Python package")
    return missing


@pytest.fixture(autouse=True, scope="session")
def integration_requirements():
    missing = missing_requirements()
    if missing:
        reason = "integration tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run them: see scripts/setup.sh)")
        pytest.skip(reason=reason)
