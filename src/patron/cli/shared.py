"""What every CLI command shares: the console, error reporting, the store and progress bars."""

from __future__ import annotations

import atexit
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from patron.errors import PatronError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from patron.cif.importer import ProgressCallback

console = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Print a domain error as one line and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PatronError as error:
            console.print(f"[red]error[/red] ({error.code}): {error.message}")
            raise typer.Exit(1) from error

    return wrapper  # type: ignore[return-value]


def open_store() -> Engine:
    """The configured store, migrated to the current schema; its connections are closed when the process ends."""
    from patron.cif.store import make_engine, migrate  # noqa: PLC0415

    engine = make_engine()
    atexit.register(engine.dispose)  # a server's connection ends cleanly, not at garbage collection
    migrate(engine)
    return engine


@contextmanager
def progress_bar() -> Iterator[Callable[[str], ProgressCallback]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    ) as progress:

        def for_file(label: str) -> ProgressCallback:
            task = progress.add_task(label, total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return update

        yield for_file


def print_rows(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], cells: Callable[[dict[str, Any]], Sequence[str]], *,
    empty: str,
) -> None:  # fmt: skip
    """A table of ``rows`` (``cells`` turns one into its texts), or the empty state saying what to do first."""
    if not rows:
        console.print(empty)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)
