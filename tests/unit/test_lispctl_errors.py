"""lispctl's errors: one clear line and a consistent exit status (2: the command line is wrong,
1: the command failed), never a traceback; ``map load`` names the file's line of a refused
entry. The API runs for real here (wsgiref on a loopback port, over a switchless Xtr)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from lisp_app.api import cli
from lisp_app.api.server import Api
from tests.unit.test_api import FakeApp


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    app = FakeApp()
    app.execute_bulk = lambda effects: app.execute(effects) or {"flows": 0, "groups": 0,
                                                                   "bundles": 1}
    httpd = make_server("127.0.0.1", 0, Api(app), handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    httpd.server_close()


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("url, message", [
    ("notaurl", "expected http://HOST[:PORT]"),
    ("ftp://127.0.0.1", "expected http://HOST[:PORT]"),
    ("http://", "expected http://HOST[:PORT]"),
    ("http://[::1", "Invalid IPv6 URL"),
    ("http://127.0.0.1:99999", "Port out of range"),
    ("http://127.0.0.1:port", "Port could not be cast"),
])
def test_a_bad_api_url_is_a_usage_error(capsys, url, message):
    code, _out, err = run(capsys, "--api", url, "mapstat")
    assert code == 2 and message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("lispctl: error: argument --api: ")


def test_arguments_and_tokens_that_cannot_be_sent_are_usage_errors(capsys):
    code, _out, err = run(capsys, "map", "get", "10.0.0.\udcff")
    assert code == 2 and "is not UTF-8 text" in err
    code, _out, err = run(capsys, "--token", "\u20ac", "mapstat")
    assert code == 2 and "the token must be printable ASCII" in err


def test_an_unreachable_api_is_a_failure(capsys):
    code, _out, err = run(capsys, "--api", "http://127.0.0.1:9", "mapstat")
    assert code == 1 and err.startswith("lispctl: cannot reach the lisp_app API")
    assert len(err.strip().splitlines()) == 1


def test_a_mapping_file_that_is_not_utf8_is_named_with_its_line(capsys, tmp_path):
    path = tmp_path / "maps.txt"
    path.write_bytes(b"10.9.0.0/16 198.51.100.1\n# a comment\n10.8.0.0/16 \xff198.51.100.2\n")
    code, _out, err = run(capsys, "--api", "http://127.0.0.1:9", "map", "load", str(path))
    assert code == 1
    assert err.strip() == f"lispctl: {path}:3: not UTF-8 text (byte 0xff at column 13)"
    code, _out, err = run(capsys, "map", "load", str(tmp_path))
    assert code == 1 and err.strip() == f"lispctl: {tmp_path}: Is a directory"


def test_map_load_names_the_line_the_api_refused(capsys, tmp_path, server):
    url, app = server
    path = tmp_path / "maps.txt"
    path.write_text("# site 2\n[1000]10.9.0.0/16 198.51.100.1\n\n"
                    "[1000]10.8.0.1/16 198.51.100.2   # host bits\n")
    code, _out, err = run(capsys, "--api", url, "map", "load", str(path))
    assert code == 1
    assert err.strip().startswith(f"lispctl: {path}:4: bad mapping: ") and "host bits" in err
    assert "mappings[" not in err
    path.write_text("[1000]10.9.0.0/16 198.51.100.1\n[1000]10.8.0.0/16 198.51.100.2 "
                    "not-an-address\n")
    code, _out, err = run(capsys, "--api", url, "map", "load", str(path))
    assert code == 1 and err.strip().startswith(f"lispctl: {path}:2: bad mapping: ")
    assert len(app.xtr.cache) == 0  # all or nothing
    path.write_text("[1000]10.9.0.0/16 198.51.100.1\n")
    code, out, _err = run(capsys, "--api", url, "map", "load", str(path))
    assert code == 0 and out.startswith("added 1 mappings")


def test_refusals_that_name_no_entry_are_left_as_they_are():
    assert cli.refusal_by_line("mappings[1].locators[0]: unknown key(s) x", "f", [3, 7]) == \
        "f:7: locator 1: unknown key(s) x"
    assert cli.refusal_by_line("mappings[5]: bad", "f", [3, 7]) is None
    assert cli.refusal_by_line("'mappings' must be a list", "f", [3]) is None
