import threading
import urllib.error
import urllib.request

import pytest

import lvsal_nb as lv
from lvsal_nb.cli import main
from lvsal_nb.dashboard.server import make_server
from lvsal_nb.errors import ConfigError


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_server_checks_the_token_on_every_request(run):
    import asyncio
    import queue

    box: queue.Queue = queue.Queue()

    def serve():  # its own event loop: another test's loop may be the current one here
        asyncio.set_event_loop(asyncio.new_event_loop())
        server, url = make_server(run, port=0, n_boot=50)
        box.put((server, url))
        server.io_loop.start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    server, url = box.get(timeout=120)
    assert url.startswith("http://127.0.0.1:") and "?token=" in url
    base = url.split("?")[0]
    got = {"ok": _get(url), "none": _get(base), "bad": _get(base + "?token=wrong")}
    server.io_loop.add_callback(server.io_loop.stop)
    t.join(timeout=30)
    assert got["ok"][0] == 200 and "<html" in got["ok"][1]
    for k in ("none", "bad"):
        assert got[k][0] == 403 and "missing or wrong token" in got[k][1]


def test_port_taken_is_a_clear_error(run):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}.*another --port"):
            make_server(run, port=port)


def test_cli_bad_run_folder(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "missing")]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_lv_dashboard_and_magic_open_the_widget(run):
    w = lv.dashboard(run, n_boot=50)
    v = w.open_answer(0)
    assert (
        v.state.trace.trace_id
        == w.data.tokens[w.data.tokens["key"] == w.data.answers.at[0, "key"]]["trace_id"].iat[0]
    )
    v.state.mark("hallucinated")  # a mark in the viewer is a human label of the dashboard
    assert w.data.labels.human.notna().sum() == 1

    # %lvsal dashboard RUN: the magic's parser and command (no global IPython: tests/test_magics.py
    # starts the one shell of the session)
    from lvsal_nb.magics import LvsalMagics, build_parser

    ns = build_parser().parse_args(["dashboard", str(run)])
    w2 = LvsalMagics._dashboard(None, ns)
    assert type(w2).__name__ == "DashboardWidget"
