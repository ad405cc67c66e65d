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
    server, url = make_server(run, port=0, n_boot=50)
    assert url.startswith("http://127.0.0.1:") and "?token=" in url
    got = {}

    def probe():
        base = url.split("?")[0]
        got["ok"] = _get(url)
        got["none"] = _get(base)
        got["bad"] = _get(base + "?token=wrong")
        server.io_loop.add_callback(server.io_loop.stop)

    threading.Thread(target=probe).start()
    server.io_loop.start()
    server.stop()
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

    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.extension_manager.load_extension("lvsal_nb")
    w2 = ip.run_line_magic("lvsal", f"dashboard {run}")
    assert type(w2).__name__ == "DashboardWidget"
