"""`digitlab studio [FOLDER ...]`: serve the studio for run and sweep folders.

Binds 127.0.0.1 on a free port unless told otherwise and prints the URL. Any other --host needs
a token (a random one unless --token is given), printed in the URL and required on every
request. The CLI group (cli/__init__.py) registers it.
"""

from __future__ import annotations

import secrets
import socket
import webbrowser
from pathlib import Path

import click

from digitlab.errors import ConfigError
from digitlab.studio.security import LOOPBACK


def free_port(host: str) -> int:
    """A port the OS says is free on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@click.command("studio")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [a free one].")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--token", help="Access token [random when --host is not loopback].")
def studio_command(
    folders: tuple[Path, ...], host: str, port: int | None, open_browser: bool, token: str | None
) -> None:
    """Serve a local web app to watch, compare and start runs in FOLDER ... [./runs ./sweeps]."""
    import uvicorn  # loads only when the studio is asked for

    from digitlab.studio.app import create_app

    served = list(folders) or [Path("runs"), Path("sweeps")]
    for folder in served:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder}: not a folder")
    if token is not None and len(token) < 8:
        raise ConfigError("--token: use at least 8 characters")
    if host not in LOOPBACK and token is None:
        token = secrets.token_urlsafe(16)
    port = port or free_port(host)
    shown = f"[{host}]" if ":" in host else host
    origin = f"http://{shown}:{port}"
    url = f"{origin}/" + (f"?token={token}" if token else "")
    app = create_app(served, token=token, allow_origin=None)
    click.echo(
        f"digitlab studio: {url}  (serving {', '.join(str(f) for f in served)}; Ctrl-C stops)"
    )
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
