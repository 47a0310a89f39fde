"""Subcommands beside ``run``: ``export`` and ``migration-plan`` (see docs/adoption.md and
docs/migration.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the subcommands to ``rollup-operator``'s subparsers; each sets ``handler``."""
    from rollup_operator.cli import export_cmd
    from rollup_operator.cli import plan_cmd

    export_cmd.register(sub)
    plan_cmd.register(sub)


def dispatch(args: argparse.Namespace) -> int:
    """Run a subcommand's handler: errors go to stderr with their exit code, stdout stays empty."""
    from rollup_operator.cli.es_target import CommandError

    try:
        return int(args.handler(args))
    except CommandError as e:
        print(f"rollup-operator {args.command}: error: {e}", file=sys.stderr)
        return e.code
