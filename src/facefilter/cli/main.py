"""`facefilter`: one command line for data, training and applying filters.

Every subcommand is a dataclass (one module per command group in this package; flag
groups several share in `cli.flags`); tyro turns its fields into flags and its
same-line comments into help. `main` turns a `UserError` into one line on stderr and
exit status 2, and `dispatch` hands each command to its `run_*` function.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Union

import tyro

from facefilter.cli.apply import Apply, Export, run_apply, run_export
from facefilter.cli.data import DataCommand, run_data
from facefilter.cli.demo import Demo, run_demo
from facefilter.cli.editor import (
    Grid,
    Lerp,
    Vectors,
    glue_edit_values,
    run_grid,
    run_lerp,
    run_vectors,
)
from facefilter.cli.eval import Eval, run_eval
from facefilter.cli.flags import check_numbers
from facefilter.cli.train import given_flags, run_train, train_command
from facefilter.cli.version import version_text
from facefilter.errors import UserError
from facefilter.models import FAMILIES
from facefilter.safe_io import os_error_message


def parser_type() -> Any:
    train: Any = Union[tuple(train_command(name) for name in FAMILIES)]  # noqa: UP007
    train_help = "Train a filter on your data or on built-in synthetic faces."
    data_help = "Make, preview and inspect data sets."
    return Union[  # noqa: UP007
        Annotated[train, tyro.conf.subcommand("train", description=train_help, prefix_name=False)],
        Annotated[Apply, tyro.conf.subcommand("apply", prefix_name=False)],
        Annotated[Export, tyro.conf.subcommand("export", prefix_name=False)],
        Annotated[Eval, tyro.conf.subcommand("eval", prefix_name=False)],
        Annotated[Demo, tyro.conf.subcommand("demo", prefix_name=False)],
        Annotated[Vectors, tyro.conf.subcommand("vectors", prefix_name=False)],
        Annotated[Grid, tyro.conf.subcommand("grid", prefix_name=False)],
        Annotated[Lerp, tyro.conf.subcommand("lerp", prefix_name=False)],
        Annotated[
            DataCommand, tyro.conf.subcommand("data", description=data_help, prefix_name=False)
        ],
    ]


DEBUG_ENV = "FACEFILTER_DEBUG"  # 1: tracebacks for unexpected errors, as --debug


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `facefilter` console script: one line and exit 2 for a mistake
    the user can fix, 130 for Ctrl-C, and one line (traceback with --debug) for a bug."""
    args = glue_edit_values(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    args = [arg for arg in args if arg != "--debug"]
    one_line_warnings()
    try:
        return dispatch(args)
    except UserError as error:
        return fail(str(error))
    except OSError as error:
        if isinstance(error, BrokenPipeError):  # `facefilter --help | head` closed the pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # the shell's code for a process ended by SIGPIPE
        if debug:
            raise
        return fail(os_error_message(error))
    except KeyboardInterrupt:
        print("\nfacefilter: interrupted; files already written are whole", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        if out_of_memory(error):
            return fail(out_of_memory_line(error))
        return fail(internal_error(error), status=1)


def one_line_warnings() -> None:
    """facefilter's own warnings (skipped images) as `warning: ...` lines, without Python's
    file and source line; data-loading workers forked later inherit this."""
    from facefilter.data.sources import SkippedImageWarning

    default = warnings.showwarning
    if getattr(default, "one_line", False):
        return  # installed by an earlier main() in this process: do not wrap it again

    def show(
        message: Warning | str, category: type[Warning], filename: str, lineno: int,
        file: Any = None, line: str | None = None,
    ) -> None:  # fmt: skip
        if issubclass(category, SkippedImageWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show.one_line = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def fail(message: str, status: int = 2) -> int:
    print(f"facefilter: error: {message}", file=sys.stderr)
    return status


def out_of_memory(error: BaseException) -> bool:
    """An allocation the machine (or the GPU) could not make: the user's sizes, not a bug."""
    text = str(error)
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()))  # fmt: skip


def out_of_memory_line(error: BaseException) -> str:
    asked = re.search(r"allocate (\d+) bytes|allocate ([\d.]+ [KMGT]iB)", str(error))
    size = f" ({int(asked[1]) / 2**30:,.1f} GiB asked)" if asked and asked[1] else (
        f" ({asked[2]} asked)" if asked else "")  # fmt: skip
    return (f"out of memory{size}; lower the batch size, the image size or the network's "
            "widths (files already written are whole)")  # fmt: skip


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0]


def internal_error(error: BaseException) -> str:
    """A bug: say what and where in one line, and how to get the full story."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    first = first_line(error)[:200]
    return (
        f"internal error ({type(error).__name__}{where}: {first}); this is a facefilter bug: "
        f"rerun with --debug (or {DEBUG_ENV}=1) and report the traceback to the project's "
        "issue tracker"
    )


def dispatch(args: list[str]) -> int:
    if args[:1] == ["--version"]:
        print(version_text())
        return 0
    command = tyro.cli(
        parser_type(),
        args=args,
        prog="facefilter",
        description="Trainable face filters: train on your faces, apply to any photo. "
        "(facefilter --version prints the version; --debug shows tracebacks.)",
    )
    check_numbers(command)
    if hasattr(type(command), "family"):
        return run_train(command, given_flags(args))
    commands: dict[type, Callable[[Any], int]] = {
        Apply: run_apply,
        Export: run_export,
        Eval: run_eval,
        Demo: run_demo,
        Vectors: run_vectors,
        Grid: run_grid,
        Lerp: run_lerp,
    }
    return commands.get(type(command), run_data)(command)
