"""``dicomsieve serve``: browse the index in a local web page."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
import webbrowser
from pathlib import Path

import click

from dicomsieve.cli.options import db_option, jobs_option, open_index
from dicomsieve.settings import Settings

__all__ = ["serve_command"]

_LOOPBACK = "127.0.0.1"


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host} port {port}: {exc.strerror}") from exc
    return sock


def _check_host(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise click.BadParameter("give an IP address, not a name", param_hint="--host") from None
    if address.is_unspecified:
        raise click.BadParameter(
            "name one address: the server accepts only requests sent to the address it listens on",
            param_hint="--host",
        )
    return str(address)


@click.command("serve")
@db_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--host",
    "host",
    default=None,
    metavar="ADDRESS",
    help="Listen on this IP address instead of 127.0.0.1, so that other machines can "
    "reach the page (they still need the token, and traffic is not encrypted).",
)
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
@click.option(
    "--cache-mb",
    type=click.IntRange(min=16),
    default=512,
    show_default=True,
    help="Memory for loaded volumes and thumbnails, in MiB.",
)
@jobs_option("Worker processes for imports; 0 means one per core.")
def serve_command(
    db: Path | None, port: int, host: str | None, no_browser: bool, cache_mb: int, jobs: int
) -> None:
    """Browse the index in a web page: import folders, see every series' loadables,
    view volumes, check localizers with reference lines, convert and download.

    Listens on 127.0.0.1 only (--host to choose another address). The first line on
    stdout is the address to open; it carries a random token made for this launch, and
    the server answers nothing without it. Stop with Ctrl-C.
    """
    import uvicorn

    from dicomsieve.web import ServeConfig, create_app

    address = _LOOPBACK if host is None else _check_host(host)
    with open_index(db) as index:  # create or migrate now: fail before printing the URL
        db_path = index.path.resolve()
    sock = _listen(address, port)
    config = ServeConfig(
        db=db_path,
        token=secrets.token_urlsafe(32),
        port=int(sock.getsockname()[1]),
        host=address,
        settings=Settings(jobs=jobs),
        cache_bytes=cache_mb * 1024 * 1024,
    )
    app = create_app(config)
    click.echo(config.url)
    sys.stdout.flush()
    if not ipaddress.ip_address(address).is_loopback:
        click.echo(
            f"dicomsieve serve: listening on {address}, reachable from other machines",
            err=True,
        )
    click.echo("dicomsieve serve: open the address above; Ctrl-C stops the server", err=True)
    if not no_browser:
        webbrowser.open(config.url)  # the socket already listens: the request waits
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,  # request lines would carry the token of the first request
            proxy_headers=False,
            server_header=False,
            lifespan="on",
        )
    )
    server.run(sockets=[sock])
