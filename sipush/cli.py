"""The ``sipush`` command line: a thin click shell around :func:`sipush.server.run`.

Every user error (bad flag, bad config, a port already in use) ends as ONE line on stderr,
``sipush: error: <text>``, and exit status 2; never a traceback. ``sipush serve`` exits with
the status :func:`sipush.server.run` returns (0 after a clean SIGINT/SIGTERM stop).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from sipush import __version__
from sipush.cli_bindings import bindings
from sipush.cli_push import push
from sipush.cli_pushes import pushes
from sipush.config import LOG_LEVELS, load_config
from sipush.errors import SipushError

EXIT_USAGE = 2


def _fail(text: str) -> None:
    """Print one ``sipush: error:`` line (newlines folded) to stderr."""
    one_line = " ".join(str(text).split())
    click.echo(f"sipush: error: {one_line}", err=True)


class _OneLineErrors(click.Group):
    """A click group whose usage errors are one line on stderr, not click's three-line form."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args, prog_name or "sipush", complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except click.exceptions.NoArgsIsHelpError as err:
            click.echo(err.ctx.get_help() if err.ctx else "", err=True)
            code = EXIT_USAGE
        except click.ClickException as err:
            _fail(err.format_message())
            code = err.exit_code
        except SipushError as err:
            _fail(str(err))
            code = EXIT_USAGE
        except click.Abort:
            _fail("aborted")
            code = 1
        except KeyboardInterrupt:
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="sipush")
def cli() -> None:
    """sipush: a SIP edge proxy that wakes sleeping mobile apps with push notifications."""


@cli.command()
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="TOML config file (see examples/sipush.toml). Without it, built-in defaults.",
)
@click.option(
    "--listen",
    multiple=True,
    metavar="TRANSPORT:HOST:PORT",
    help="Listen address, e.g. udp:127.0.0.1:5060 (repeatable; replaces [server] listen).",
)
@click.option(
    "--upstream",
    metavar="SIP-URI",
    help="The PBX to relay to, e.g. 'sip:192.0.2.10:5060;transport=udp' ([upstream] uri).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Override [log] level.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    config_path: str | None,
    listen: tuple[str, ...],
    upstream: str | None,
    log_level: str | None,
) -> None:
    """Run the proxy until SIGINT or SIGTERM."""
    config = load_config(config_path, listen=listen, log_level=log_level, upstream=upstream)
    logging.basicConfig(
        level=config.log.level.upper(),
        stream=sys.stderr,
        format="sipush: %(levelname)s %(name)s: %(message)s",
    )
    # Their debug lines would log SQL parameters and HTTP/2 headers (push tokens, bearer JWTs).
    for noisy in ("aiosqlite", "asyncio", "hpack", "h2", "httpcore", "httpx", "aioapns"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    import sipush.server as server  # lazy: config errors never need the server's imports

    ctx.exit(server.run(config))


cli.add_command(bindings)
cli.add_command(push)
cli.add_command(pushes)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``sipush`` and ``python -m sipush``)."""
    cli.main(args=argv, prog_name="sipush")
    raise AssertionError("unreachable: cli.main exits")  # pragma: no cover
