"""The documentation renders and its links hold: README.rst and every page in docs/ parse as
reStructuredText without a warning, every relative link and image they give exists, and
docs/index.rst lists every page."""

from __future__ import annotations

import io
import re
from pathlib import Path

import docutils.core
import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs").glob("*.rst"))
LINK = re.compile(r"<([^<>`\s]+\.(?:rst|png|yaml|py))(?:#[^>]*)?>`__|^\.\. image:: (\S+)", re.M)


def warnings_of(path: Path) -> str:
    stream = io.StringIO()
    docutils.core.publish_doctree(path.read_text(), source_path=str(path), settings_overrides={
        "report_level": 2, "halt_level": 5, "warning_stream": stream})
    return stream.getvalue()


@pytest.mark.parametrize("path", [REPO / "README.rst", *PAGES], ids=lambda p: p.name)
def test_page_parses_without_warnings(path):
    assert warnings_of(path) == ""


@pytest.mark.parametrize("path", [REPO / "README.rst", *PAGES], ids=lambda p: p.name)
def test_relative_links_and_images_exist(path):
    targets = [a or b for a, b in LINK.findall(path.read_text())]
    for target in targets:
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_the_index_lists_every_page_and_the_readme_links_the_docs():
    index = (REPO / "docs" / "index.rst").read_text()
    for page in PAGES:
        if page.name != "index.rst":
            assert page.name in index, page.name
    readme = (REPO / "README.rst").read_text()
    assert "docs/index.rst" in readme and "docs/benchmarks.rst" in readme


def test_a_broken_link_is_caught(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text("See `there <missing.rst>`__.\n\n.. image:: nothing.png\n")
    targets = [a or b for a, b in LINK.findall(page.read_text())]
    assert targets == ["missing.rst", "nothing.png"]
    assert not any((tmp_path / t).exists() for t in targets)
