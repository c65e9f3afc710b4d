"""Commands of a program: Faust's ``@app.command`` with ``option``, ``argument``, ``AppCommand``.

::

    from shoal.cli import argument, option

    @app.command(argument("name"), option("--times", type=int, default=1))
    async def greet(self, name: str, times: int) -> None:
        \"\"\"Ask the greeter agent and print its answers.\"\"\"
        for _ in range(times):
            self.say(await greeter.ask(name))

It runs as ``python app.py greet Ann --times 2`` (the program calls ``app.main()``), or as
``clusterctl -A app greet Ann --times 2``. As in Faust, the command's name is the function's,
with dashes for underscores; a function that takes parameters gets the command first
(``self.app`` is the app) and its options and arguments by name; the app's workers are not
started (no agents run in the command's process), but it can send to topics and ask agents.
Unlike the Faust program whose command printed its answer and then never exited, a shoal
command exits when its function returns: 0, or 1 with the error if it raised; its producer
is flushed and its reply topic removed first.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

import click

from shoal.exitcodes import ExitCode

log = logging.getLogger(__name__)

Handler = Callable[..., Coroutine[Any, Any, Any]]
ClickDecorator = Callable[[Any], Any]


def option(*param_decls: str, show_default: bool = True, **kwargs: Any) -> ClickDecorator:
    """A command-line option of a command (click's ``option``; defaults are shown in
    ``--help``, as in Faust)."""
    return click.option(*param_decls, show_default=show_default, **kwargs)


def argument(*param_decls: str, **kwargs: Any) -> ClickDecorator:
    """A positional argument of a command (click's ``argument``)."""
    return click.argument(*param_decls, **kwargs)


class AppCommand:
    """A command that runs with the app loaded; ``@app.command`` makes subclasses of it."""

    #: The click decorators (``option``, ``argument``) of the command.
    options: ClassVar[tuple[ClickDecorator, ...]] = ()
    #: The command's name on the command line.
    command_name: ClassVar[str] = ""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self.kwargs = kwargs

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"command {self.command_name} has no run()")

    @classmethod
    def from_handler(
        cls, *options: ClickDecorator, name: str | None = None, **attributes: Any
    ) -> Callable[[Handler], type[AppCommand]]:
        """The subclass whose ``run`` is ``fun``: what ``@app.command(...)`` makes."""

        def make(fun: Handler) -> type[AppCommand]:
            if not inspect.iscoroutinefunction(fun):
                raise TypeError(f"command {fun.__qualname__} must be an async function")
            takes_self = bool(inspect.signature(fun).parameters)
            run = fun if takes_self else staticmethod(fun)
            return type(
                fun.__name__,
                (cls,),
                {
                    "run": run,
                    "options": tuple(options),
                    "command_name": name or fun.__name__.replace("_", "-"),
                    "__doc__": fun.__doc__,
                    "__module__": fun.__module__,
                    "__qualname__": fun.__qualname__,
                    **attributes,
                },
            )

        return make

    # -- what a command's body may call (Faust's names) --------------------------------------

    def say(self, message: Any = "", *, err: bool = False, **kwargs: Any) -> None:
        """Print ``message`` (to stderr with ``err=True``)."""
        click.echo(message, err=err, **kwargs)

    def carp(self, message: Any, **kwargs: Any) -> None:
        """Print ``message`` to stderr."""
        click.echo(message, err=True, **kwargs)

    # -- running -----------------------------------------------------------------------------

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command, then stop what it started (the producer, a reply topic)."""
        try:
            return await self.run(*args, **kwargs)
        finally:
            await self.on_stop()

    async def on_stop(self) -> None:
        await self.app.stop(flush_timeout=30.0)

    @classmethod
    def as_click_command(cls, get_app: Callable[[], Any]) -> click.Command:
        """This command for click; ``get_app`` gives the loaded app when it runs."""

        def callback(**params: Any) -> None:
            command = cls(get_app(), **params)
            sys.exit(run_command(command, params))

        command = click.Command(
            cls.command_name, callback=callback, help=cls.__doc__, short_help=_short(cls)
        )
        for decorate in reversed(cls.options):
            decorate(command)
        return command


def _short(cls: type[AppCommand]) -> str | None:
    doc = inspect.getdoc(cls)
    return doc.splitlines()[0] if doc else None


def run_command(command: AppCommand, params: dict[str, Any]) -> int:
    """Run ``command`` on a fresh event loop; the exit code: 0, or 1 if it raised."""
    try:
        asyncio.run(command.execute(**params))
    except KeyboardInterrupt:
        return ExitCode.FAILED
    except Exception as exc:
        log.error("command %s failed: %r", command.command_name, exc, exc_info=exc)
        click.echo(f"Error: {exc}", err=True)
        return ExitCode.FAILED
    return ExitCode.OK


#: Faust's other name for it.
Command = AppCommand

__all__ = ["AppCommand", "Command", "argument", "option", "run_command"]
