"""Writing files so that a failure never costs a good one.

Every file a command writes goes through `atomic_write`: it is written beside its
target under a temporary name, then renamed over it. A full disk, a kill or a Ctrl-C
in the middle leaves the old file whole and no temporary behind, and an operating
system error (no space, no permission, a read-only disk) becomes one `UserError`
line that names the path and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from facefilter.errors import UserError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def temporary_path(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process, keeping the extension
    (image and video writers choose their format from it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def atomic_write(path: Path, write: Callable[[Path], object], durable: bool = False) -> None:
    """Call `write(tmp)` on a temporary path beside `path`, then rename it over `path`.
    `durable`: also flush it to the disk first (checkpoints), so even a power cut leaves
    the old file or the new one, never an empty one."""
    path = Path(path)
    tmp = temporary_path(path)
    sweep_once(path.parent)
    try:
        write(tmp)
        if durable:
            sync(tmp)
        os.replace(tmp, path)
        if durable:
            sync(path.parent)
    except OSError as error:
        named = Path(error.filename) if error.filename else None  # e.g. a program not found
        raise UserError(os_error_message(error, path if named in (None, tmp) else named)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a failed write leaves no half file behind


# temporary_path's names: `.NAME.<pid>.tmp` and `.NAME.<pid>.tmp.EXT`
TEMPORARY = re.compile(r"\..+\.(\d+)\.tmp(\.[^.]+)?")
_swept: set[Path] = set()


def sweep_once(folder: Path) -> None:
    """`sweep_temporaries(folder)` the first time this process writes into `folder`."""
    key = Path(folder).absolute()
    if key not in _swept:
        _swept.add(key)
        sweep_temporaries(key)


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries that processes killed mid-write (kill -9, power cut) left
    in `folder`: those whose process no longer runs. Returns what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            found = TEMPORARY.fullmatch(entry.name)
            if found is None or process_runs(int(found[1])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid at all: leave its file alone
    return True


def refuse_to_replace(folder: Path, flag: str, kind: str, earlier: Callable[[Path], bool]) -> None:
    """One line, before any work, unless `folder` is new, empty or an earlier folder of
    `kind` (`earlier(folder)`): `replace_folder` replaces it whole, so nothing else may
    stand there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not earlier(folder):
        raise UserError(f"{flag} {folder} holds files that are not {kind}, and it would be "
                        "replaced whole; choose a new or empty folder")  # fmt: skip


def replace_folder(path: Path, build: Callable[[Path], object]) -> None:
    """Call `build(tmp)` on an empty temporary folder beside `path`, then swap it in for
    `path` whole: a kill, a full disk or an error in `build` leaves the old folder as it
    was (or no folder), never a mix of old and new files."""
    path = Path(path)
    tmp, old = temporary_path(path), path.with_name(f".{path.name}.{os.getpid()}.old")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_once(path.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        build(tmp)
        sync(tmp)
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists():
                os.replace(old, path)
            raise
    except OSError as error:
        raise UserError(os_error_message(error, path)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), durable)


def write_text(path: Path, text: str, durable: bool = False) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text), durable)


def sync(path: Path) -> None:
    """fsync a file or a folder (a rename is durable once its folder is)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def free_megabytes(path: Path) -> int:
    """Free space on the disk holding `path` (or its nearest existing parent)."""
    place = Path(path).absolute()
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        return shutil.disk_usage(place).free // 2**20
    except OSError:
        return 0


def os_error_message(error: OSError, path: Path | None = None) -> str:
    """One line for an operating-system error while writing `path`."""
    where = Path(error.filename) if error.filename and path is None else path
    if error.errno in NO_SPACE:
        place = where.parent if where is not None else Path.cwd()
        return (
            f"no space left on {place}: free {free_megabytes(place)} MB; make room or "
            "write elsewhere (nothing that was there before was changed)"
        )
    reason = error.strerror or str(error)
    if error.errno in (errno.EEXIST, errno.ENOTDIR) and where is not None and where.is_file():
        return f"{where} is a file where a folder is needed; choose another path"
    if error.errno in READ_ONLY:
        return f"cannot write {where}: {reason[:1].lower()}{reason[1:]}; choose a writable place"
    if where is None:
        return f"{reason} ({type(error).__name__})"
    return f"{where}: {reason[:1].lower()}{reason[1:]}"


def refuse_output_over_inputs(output: Path, inputs: Iterable[Path], flag: str = "-o") -> None:
    """One line, before any work, when `output` would overwrite or hold an input: the same
    file, the input folder itself or a folder above it, or a file or folder inside an input
    folder (it would overwrite an input, or become one the next time)."""
    out = Path(output).resolve()
    for source in inputs:
        src = Path(source).resolve()
        if out == src:
            raise UserError(f"{flag} {output} is the input {source}; choose another output, "
                            "so the original is kept")  # fmt: skip
        if src.is_dir() and src.is_relative_to(out):
            raise UserError(f"{flag} {output} holds the input folder {source}; write the "
                            "results to a new folder outside it")  # fmt: skip
        if src.is_dir() and out.is_relative_to(src):
            raise UserError(f"{flag} {output} lies inside the input folder {source}; write "
                            "the results to a folder outside it")  # fmt: skip
