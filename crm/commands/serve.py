"""``crm serve``: the BentoML service on localhost."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from crm.apps import app, console, user_errors

if TYPE_CHECKING:
    from features.store import Store

SERVICE = "serving.service:CRMService"


def serve_command(
    port: int, host: str = "127.0.0.1", snapshot: Path | None = None, store: Store | None = None
) -> tuple[list[str], dict]:
    """The ``bentoml serve`` command line and environment for the service (used by tests too);
    ``store``: the registry to serve from (default: the one the environment names)."""
    from serving.config import pin_numeric_threads

    env = dict(os.environ)
    pin_numeric_threads(env)
    if store is not None:
        env.update(store.env())
    if snapshot is not None:
        env["CRM_ONLINE_SNAPSHOT"] = str(Path(snapshot).resolve())
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    cmd = [
        sys.executable, "-m", "bentoml", "serve", SERVICE,
        "--host", host, "--port", str(port), "--working-dir", str(root),
    ]  # fmt: skip
    return cmd, env


def check_port_free(host: str, port: int) -> None:
    """Raise a :class:`UserError` naming the port when ``host:port`` cannot be listened on."""
    from features.errors import UserError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise UserError(
            f"Host {host!r} is not an address of this machine: pass --host 127.0.0.1 or another."
        ) from None
    with socket.socket(family, kind, proto) as probe:
        # as the server binds: a recently closed server's connections (TIME_WAIT) are no conflict
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"Port {port} on {host} is already in use: stop the process that holds it"
                    " (another `crm serve`?) or pass another --port."
                ) from None
            raise UserError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None


@app.command("serve")
@user_errors
def serve(
    port: int = typer.Option(3000, min=1, max=65535, help="Port on localhost."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    snapshot: Path | None = typer.Option(None, help="Online snapshot folder (default CRM_ONLINE_SNAPSHOT)."),
    import_models: bool = typer.Option(
        False, "--import-models", help="Copy champions and snapshot into the BentoML store, then exit."
    ),
) -> None:
    """Serve the recommendations, the churn scores and both customer lists with the champion models."""
    from serving.config import ServiceSettings

    if import_models:
        from serving.bento import import_models as import_into_bentoml

        settings = ServiceSettings.from_env(serve_command(port, host, snapshot)[1])
        for name, tag in import_into_bentoml(settings).items():
            console.print(f"{name}: {tag}")
        console.print(
            "now, from the repository root: `bentoml build` (packs these versions), then"
            " `bentoml serve crm:latest` or `bentoml containerize crm:latest`"
        )
        return
    start_server(port, host, snapshot)


def start_server(
    port: int, host: str = "127.0.0.1", snapshot: Path | None = None, store: Store | None = None
) -> None:
    """Replace this process with the BentoML server (``crm serve`` and ``crm demo``)."""
    from serving.config import ServiceSettings

    check_port_free(host, port)
    cmd, env = serve_command(port, host, snapshot, store)
    settings = ServiceSettings.from_env(env)
    auth = "bearer token required" if settings.token_bytes() else "no auth (set CRM_API_TOKEN to require one)"
    console.print(
        f"serving {settings.churn_model_uri} and {settings.recommender_model_uri} with snapshot"
        f" {settings.online_snapshot} on http://{host}:{port} ({auth}); readiness at /readyz"
    )
    os.execvpe(cmd[0], cmd, env)  # the server replaces this process: signals reach it directly
