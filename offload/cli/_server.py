"""`offload server`: the HTTP API, the worker protocol and the dashboard, served by uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import TYPE_CHECKING

import click

from offload._redact import mask_logging
from offload.cli._common import friendly_errors, url_option
from offload.cli._load import load_app
from offload.store import verify_store

if TYPE_CHECKING:
    from offload.server import Token


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command("server")
@click.argument("app_path", metavar="[APP]", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=8750, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@url_option
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False),
    help="File of name:role:token lines (roles: read, enqueue, worker, admin); "
    "default $OFFLOAD_TOKENS. Without tokens only loopback addresses may be bound.",
)
@click.option(
    "--external-kind",
    "external_kinds",
    multiple=True,
    metavar="NAME[=QUEUE]",
    help="A job kind that non-Python workers run (repeatable); POST /jobs accepts it with "
    "any JSON arguments.",
)
@click.option(
    "--allow-undeclared",
    is_flag=True,
    help="Accept any well-formed kind in POST /jobs, declared or not.",
)
@click.option(
    "--max-wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Longest wait of Expect: 200-ok and of a worker's long poll, seconds.",
)
@click.option(
    "--max-result-waits",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Result waits (Expect: 200-ok, Prefer: wait) at once; past it, 503.",
)
@click.option(
    "--max-worker-polls",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Worker long polls at once (a bound of their own, so waiting producers cannot "
    "starve workers); past it, 503.",
)
@click.option(
    "--no-maintenance",
    is_flag=True,
    help="Do not take part in electing the maintenance leader (promote, rescue, cron, prune).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Extra Host name accepted without tokens (repeatable; loopback names always are).",
)
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Behind a reverse proxy: trust X-Forwarded-For/-Proto (and Forwarded: proto=) from the "
    "--forwarded-allow-ips addresses. Needs tokens.",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="IPS",
    help="Comma-separated addresses of the proxies --proxy-headers trusts, or '*' "
    "[default: 127.0.0.1]. Needs tokens.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds a client has to send a request's line and headers; then it is cut off.",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Longest pause, in seconds, while a request body arrives; then it is cut off.",
)
@click.option(
    "--keep-alive-timeout",
    default=5,
    show_default=True,
    type=click.IntRange(1, 3600),
    help="Seconds an idle connection is kept open between requests.",
)
@click.option(
    "--max-connections",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Connections served at once; a request past it is answered 503.",
)
@click.option(
    "--max-header-bytes",
    default=65536,
    show_default=True,
    type=click.IntRange(1024, 16 * 1024 * 1024),
    help="Largest request line and headers, in bytes; a larger one is refused.",
)
@click.option(
    "--root-path",
    default="",
    metavar="PATH",
    help="The path prefix a proxy serves this under and strips (e.g. /ops/offload): the "
    "dashboard's links and redirects start with it.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@friendly_errors
def server(
    app_path: str | None,
    host: str,
    port: int,
    url: str | None,
    tokens_file: str | None,
    external_kinds: tuple[str, ...],
    allow_undeclared: bool,
    max_wait: float,
    max_result_waits: int,
    max_worker_polls: int,
    no_maintenance: bool,
    allowed_hosts: tuple[str, ...],
    proxy_headers: bool,
    forwarded_allow_ips: str | None,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: int,
    max_connections: int,
    max_header_bytes: int,
    root_path: str,
    verbose: int,
) -> None:
    """Serve APP (module:attribute) over HTTP: REST API, worker protocol, dashboard, metrics.

    Without APP it serves a bare store (with --url), for jobs run by workers in other
    languages.
    """
    try:
        import uvicorn

        from offload.server import ServerConfig, create_app
        from offload.server._config import load_tokens, parse_external_kinds, readable_by_others
        from offload.server._slow_clients import protocol
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise click.ClickException(
            f"the server needs its extras: pip install 'offload[server]' ({exc})"
        ) from exc
    from offload._errors import ConfigurationError

    level = logging.WARNING - 10 * min(verbose + 1, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    mask_logging()  # a URL in any log line shows without its password
    proxies = tuple(
        ip.strip() for ip in (forwarded_allow_ips or "127.0.0.1").split(",") if ip.strip()
    )
    try:
        tokens = load_tokens(tokens_file)
        if (proxy_headers or forwarded_allow_ips is not None) and not tokens:
            raise ConfigurationError(
                "refusing --proxy-headers and --forwarded-allow-ips without tokens: behind a "
                "proxy every request looks local, so anyone who reaches the proxy could read "
                "and change jobs. Give tokens with --tokens-file or $OFFLOAD_TOKENS."
            )
        if forwarded_allow_ips is not None and not proxy_headers:
            raise ConfigurationError("--forwarded-allow-ips needs --proxy-headers")
        config = ServerConfig(
            tokens=tuple(tokens),
            external_kinds=tuple(parse_external_kinds(external_kinds)),
            allow_undeclared=allow_undeclared,
            max_wait=max_wait,
            max_result_waits=max_result_waits,
            max_worker_polls=max_worker_polls,
            allowed_hosts=allowed_hosts,
            maintenance=not no_maintenance,
            trusted_proxies=proxies if proxy_headers else (),
        ).validate()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    if tokens_file and readable_by_others(tokens_file):
        click.echo(f"warning: {tokens_file} is readable by other users; chmod 600 it", err=True)
    if not tokens and not is_loopback(host):
        raise click.ClickException(
            f"refusing to bind {host}: no tokens are configured, so anyone who reaches this "
            "address could read and change jobs. Bind 127.0.0.1 (the default), or give tokens "
            "with --tokens-file or $OFFLOAD_TOKENS."
        )
    app = load_app(app_path, url)
    verify_store(app.config.url)  # a damaged file: one line and exit 3
    try:
        asgi = create_app(app, config=config)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    shown = f"[{host}]" if ":" in host else host
    if tokens:
        roles = ", ".join(f"{t.name} ({t.role}{_scope_note(t)})" for t in tokens)
        click.echo(f"offload server: {len(tokens)} token(s): {roles}", err=True)
        plain = [t.name for t in tokens if t.secret != t.hashed]
        if plain:
            click.echo(
                f"offload server: token(s) {', '.join(plain)} are kept as given; keep their "
                "hashes instead (`offload hash-token`)",
                err=True,
            )
    else:
        click.echo(
            "offload server: no tokens configured: serving on loopback only, and anyone on "
            "this machine can read and change jobs",
            err=True,
        )
    click.echo(
        f"offload server: {app.store.engine} store, {len(app.jobs)} job type(s); "
        f"dashboard http://{shown}:{port}/ · API http://{shown}:{port}/openapi.json",
        err=True,
    )
    try:
        uvicorn.run(
            asgi,
            host=host,
            port=port,
            log_level=["warning", "info", "debug"][min(verbose, 2)],
            proxy_headers=proxy_headers,
            forwarded_allow_ips=",".join(proxies) if proxy_headers else None,
            server_header=False,
            http=protocol(header_timeout, body_timeout),
            timeout_keep_alive=keep_alive_timeout,
            limit_concurrency=max_connections,
            h11_max_incomplete_event_size=max_header_bytes,
            lifespan="on",
            root_path=root_path.rstrip("/"),
        )
    finally:
        app.close()


def _scope_note(token: Token) -> str:
    """`, tenants=acme, data=no`: what limits a token, for the start-up line."""
    parts = [
        f"{what}={'|'.join(values)}"
        for what in ("queues", "kinds", "tenants")
        if (values := getattr(token, what)) is not None
    ]
    if not token.data:
        parts.append("data=no")
    return "".join(f", {p}" for p in parts)


@click.command("hash-token")
@click.argument("token", required=False)
def hash_token_command(token: str | None) -> None:
    """Print TOKEN's hash form (sha256:...) for a tokens file: the server then keeps no token.

    Without TOKEN it reads one line from standard input (so the token stays out of the shell
    history and the process list), or makes a new random token and prints it first when the
    input is a terminal.
    """
    import hashlib
    import secrets

    if token is None:
        if sys.stdin.isatty():
            token = secrets.token_urlsafe(32)
            click.echo(f"token: {token}", err=True)
        else:
            token = sys.stdin.readline().strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise click.ClickException("a token needs at least 16 characters and no spaces")
    # The same form as offload.server.hash_token, without importing the server's extras.
    click.echo("sha256:" + hashlib.sha256(token.encode()).hexdigest())
