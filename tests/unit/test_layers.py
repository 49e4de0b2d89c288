"""The one-way layers of docs/architecture.rst hold: import-linter checks the contracts written in
setup.cfg, and every part of lisp_app sits on a floor of the layers contract."""

from __future__ import annotations

import configparser
import pkgutil
import subprocess
import sys
from pathlib import Path

import lisp_app

ROOT = Path(__file__).resolve().parents[2]


def contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache", "--config", str(ROOT / "setup.cfg")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_every_part_of_the_package_is_on_a_floor():
    floors = contracts()["importlinter:contract:layers"]["layers"]
    named = {name.strip() for line in floors.splitlines() for name in line.split("|")} - {""}
    parts = {f"lisp_app.{m.name}" for m in pkgutil.iter_modules(lisp_app.__path__)}
    assert parts <= named, f"not on any floor: {sorted(parts - named)}"


def test_every_subpackage_is_checked_for_cycles():
    ancestors = contracts()["importlinter:contract:no-cycles"]["ancestors"].split()
    packages = {f"lisp_app.{m.name}" for m in pkgutil.iter_modules(lisp_app.__path__) if m.ispkg}
    assert packages | {"lisp_app"} <= set(ancestors)
