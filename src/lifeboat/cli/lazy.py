"""Top-level commands loaded when they run, so that ``lifeboat --help`` imports none of them.

Each command module imports the library it drives (stores, erasure coding, FROST, the
recovery service, the chain tools), and building all of them cost most of a second per start.
The root group here lists every command by name with its one-line help, and imports a
command's module (and builds its click command, as ``typer`` would have) only when that command
is looked up to run or to show its own help. The help texts are written out in the registry
(:data:`lifeboat.cli.main.COMMANDS`); ``tests/test_cli_startup.py`` checks that each one is the
first paragraph of the real command's help, so ``lifeboat --help`` cannot drift from them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_group_from_info

#: ``ParameterSource.DEFAULT`` of the click that typer runs on (typer carries its own copy).
_DEFAULT_SOURCE = "DEFAULT"


@dataclass(frozen=True)
class LazyCommand:
    """A top-level command: ``module.attribute`` is a ``typer.Typer`` (a group) or a command
    function; ``help`` is the first paragraph of its help, as ``lifeboat --help`` lists it."""

    module: str
    attribute: str
    help: str

    def target(self) -> Any:
        return getattr(importlib.import_module(self.module), self.attribute)

    def build(self, name: str, root: typer.Typer) -> Any:
        """The click command for ``name``, built exactly as ``root.add_typer``/``root.command`` would."""
        target = self.target()
        holder = typer.Typer()
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
            return get_group_from_info(
                holder.registered_groups[0],
                pretty_exceptions_short=root.pretty_exceptions_short,
                suggest_commands=root.suggest_commands,
                rich_markup_mode=root.rich_markup_mode,
            )
        holder.command(name)(target)
        return get_command_from_info(
            holder.registered_commands[0],
            pretty_exceptions_short=root.pretty_exceptions_short,
            rich_markup_mode=root.rich_markup_mode,
        )


def _defaults_as_they_are(param: Any) -> Any:
    """Let ``param`` keep a default value without coercing it; returns ``param``.

    Typer coerces every option's value with pydantic, which it imports on first use (more time
    than the rest of ``lifeboat repo --help``). An option left at its default, a value already
    of the option's type, comes out of that coercion unchanged, so it is passed through (to the
    option's callback, if any); a value given on the command line still goes through typer,
    errors and all.
    """
    if getattr(param, "_defaults_as_they_are", False):
        return param
    process = param.process_value
    default = param.default

    def process_value(ctx: Any, value: Any) -> Any:
        source = ctx.get_parameter_source(param.name)
        if (
            param.required
            or getattr(source, "name", None) != _DEFAULT_SOURCE
            or type(value) is not type(default)
            or value != default
        ):
            return process(ctx, value)
        if param.callback is not None:
            value = param.callback(ctx, param, value)
        return value

    param.process_value = process_value
    param._defaults_as_they_are = True
    return param


class LazyGroup(TyperGroup):
    """A typer group whose commands come from :attr:`registry`, loaded on first use.

    While the group formats its own help, a lookup returns a stand-in that carries only the
    name and the one-line help, so listing the commands imports nothing. Its own options keep
    their defaults without typer's coercion (:func:`_defaults_as_they_are`), so choosing a
    command and showing its help does not import pydantic either.
    """

    #: Set by a subclass: the commands, in the order ``--help`` lists them, and the root app
    #: whose settings they are built with.
    registry: ClassVar[Mapping[str, LazyCommand]] = {}
    root: ClassVar[typer.Typer | None] = None
    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for param in self.params:
            _defaults_as_they_are(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        return option if option is None else _defaults_as_they_are(option)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.registry if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = self.registry.get(cmd_name)
        if entry is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        if self._listing:
            return TyperCommand(cmd_name, help=entry.help)
        assert self.root is not None, "LazyGroup.root must be set"
        command = self.commands[cmd_name] = entry.build(cmd_name, self.root)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
