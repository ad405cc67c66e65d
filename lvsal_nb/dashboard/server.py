"""`lvsal dashboard RUN`: the dashboard as a standalone page, served by Bokeh's server (tornado).

Why Bokeh's server and not Voilà: the dashboard is Bokeh models with Python callbacks already, so
`bokeh.server.server.Server` serves it in-process with no kernel per visitor, no extra dependency
(Voilà would add a Jupyter server stack and a kernel per page), and it starts in about a second.

Access: 127.0.0.1 by default and a random token (secrets.token_urlsafe) checked on EVERY request,
the page and its websocket: the printed URL carries `?token=...`; the first page load sets an
HttpOnly, SameSite=Strict cookie so that the websocket and reloads pass; anything else gets 403.
"""

from __future__ import annotations

import hmac
import secrets
import socket
import sys
from pathlib import Path

from ..errors import ConfigError

APP_PATH = "/dashboard"
COOKIE = "lvsal_dashboard_token"


def token_auth(token: str):
    """A bokeh AuthProvider that admits requests carrying `token` (query argument or cookie)."""
    from bokeh.server.auth_provider import AuthProvider
    from tornado.web import RequestHandler

    class Denied(RequestHandler):
        def get(self):
            self.set_status(403)
            self.finish(
                "lvsal dashboard: missing or wrong token; open the URL printed by `lvsal dashboard` "
                "(it ends with ?token=...)"
            )

    def get_user(handler):
        given = handler.get_query_argument("token", None)
        if given is not None and not hmac.compare_digest(given, token):
            return None  # a wrong token is refused even next to a good cookie
        if given is not None:
            if hasattr(handler, "set_cookie") and not getattr(handler, "_headers_written", False):
                try:
                    handler.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
                except Exception:  # a websocket after its upgrade cannot set cookies; it has one
                    pass
            return "analyst"
        cookie = handler.get_cookie(COOKIE)
        if cookie is not None and hmac.compare_digest(cookie, token):
            return "analyst"
        return None

    class TokenAuth(AuthProvider):
        @property
        def get_user(self):
            return get_user

        @property
        def login_url(self):
            return "/denied"

        @property
        def login_handler(self):
            return Denied

    return TokenAuth()


def _check_port(address: str, port: int) -> int:
    """The port to use (a free one for 0); raises ConfigError when `port` is taken."""
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {address}:{port} ({e.strerror}); pass another --port, "
                "or --port 0 for a free one"
            ) from e
        return s.getsockname()[1]


def make_server(
    run: str | Path,
    *,
    address: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    data=None,
    n_boot: int = 1000,
):
    """A started-but-not-running Bokeh Server for the run; returns (server, url with token).

    The run is read once here (index built or extended and cached); each page gets its own Dashboard.
    """
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    from .app import Dashboard
    from .model import RunData

    data = data or RunData(run)
    token = token or secrets.token_urlsafe(24)
    port = _check_port(address, port)  # a fixed port: the websocket origin check names it

    def page(doc):
        doc.title = f"lvsal dashboard · {data.run.name}"
        doc.add_root(Dashboard(data, n_boot=n_boot).layout)

    server = Server(
        {APP_PATH: Application(FunctionHandler(page))},
        address=address,
        port=port,
        allow_websocket_origin=[f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"],
        auth_provider=token_auth(token),
        num_procs=1,
    )
    server.start()
    url = f"http://{address}:{port}{APP_PATH}?token={token}"
    server.lvsal_data = data
    return server, url


def serve(
    run: str | Path,
    *,
    address: str = "127.0.0.1",
    port: int = 5008,
    token: str | None = None,
    show: bool = False,
) -> int:
    """Serve until Ctrl-C (the `lvsal dashboard` command)."""
    if address not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"lvsal dashboard: listening on {address}: anyone who can reach it and has the token can read "
            "the run and write labels",
            file=sys.stderr,
        )
    server, url = make_server(run, address=address, port=port, token=token)
    print(f"lvsal dashboard: serving {server.lvsal_data.run}\n  open {url}\n  (Ctrl-C to stop)", flush=True)
    if show:
        import webbrowser

        webbrowser.open(url)
    try:
        server.run_until_shutdown()
    except KeyboardInterrupt:
        pass
    return 0
