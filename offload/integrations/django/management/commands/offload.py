"""`manage.py offload …`: the `offload` command with the project's app already named."""

from __future__ import annotations

import argparse
from typing import Any

import click
from django.core.management.base import BaseCommand, CommandParser

from offload.cli import main

APP_PATH = "offload.integrations.django:app"


def with_app(args: list[str]) -> list[str]:
    """`args` of the `offload` command with the project's app named where the command takes
    one (`worker APP`, `jobs list --app`), unless the caller named one."""
    command: click.Command = main
    depth = 0
    ctx = click.Context(main)
    while isinstance(command, click.Group) and depth < len(args):
        sub = command.get_command(ctx, args[depth])
        if sub is None:
            return args
        command, depth = sub, depth + 1
    param = next((p for p in command.params if p.name == "app_path"), None)
    if param is None or depth == 0:
        return args
    rest = args[depth:]
    if isinstance(param, click.Option):
        if any(a == "--app" or a.startswith("--app=") for a in rest):
            return args
        return [*args[:depth], "--app", APP_PATH, *rest]
    return [*args[:depth], APP_PATH, *rest]


class Command(BaseCommand):
    help = "Run an `offload` command on this project's app (manage.py offload worker, jobs …)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("args", nargs=argparse.REMAINDER)
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        """Everything after `offload` goes to the click command as it is."""
        main.main(args=with_app(argv[2:]), prog_name=f"{argv[0]} {argv[1]}")

    def handle(self, *args: Any, **options: Any) -> None:
        """`call_command("offload", "jobs", "list", ...)`: the click command in this process;
        its errors are raised (click's exceptions), not turned into an exit."""
        main.main(args=with_app(list(args)), prog_name="offload", standalone_mode=False)
