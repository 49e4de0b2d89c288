"""The demo refuses to start, with a clear message, without root or without its tools."""

import shutil

from topologies import demo


def test_refuses_without_root(monkeypatch):
    monkeypatch.setattr(demo.os, "geteuid", lambda: 1000)
    assert "as root" in demo.preflight()


def test_refuses_without_open_vswitch_and_frr(monkeypatch):
    monkeypatch.setattr(demo.os, "geteuid", lambda: 0)
    monkeypatch.setattr(demo.shutil, "which", lambda tool: None if tool.startswith("ovs")
                        else "/usr/bin/" + tool)
    monkeypatch.setattr(demo.os.path, "exists", lambda path: False)
    message = demo.preflight()
    assert "openvswitch-switch" in message and "frr" in message
    assert "scripts/setup.sh" in message


def test_main_exits_1_with_the_reason(monkeypatch, capsys):
    monkeypatch.setattr(demo.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(demo.sys, "argv", ["demo.py"])
    assert demo.main() == 1
    assert "demo: run the demo as root" in capsys.readouterr().err
    assert shutil.which("python3")  # the machine itself is untouched
