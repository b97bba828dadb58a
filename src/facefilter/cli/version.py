"""`facefilter --version`: this version, torch's, and which optional parts are installed.

Read from the installed packages' metadata, not by importing them (Gradio alone takes
seconds to import), and from facefilter's own declared extras, so the list cannot drift
from pyproject.toml.
"""

from __future__ import annotations

import platform
import re
from importlib import metadata

from facefilter import __version__

EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([\w-]+)["']""")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Extras for development only: not "parts" a user of the filters chooses
NOT_PARTS = ("dev",)


def installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def declared_extras() -> dict[str, list[str]]:
    """{extra: [distribution, ...]} from facefilter's installed metadata (empty when
    facefilter runs from a source tree that was never installed)."""
    try:
        requirements = metadata.requires("facefilter") or []
    except metadata.PackageNotFoundError:
        return {}
    extras: dict[str, list[str]] = {}
    for requirement in requirements:
        marker = EXTRA_MARKER.search(requirement)
        name = NAME.match(requirement)
        if marker and name and marker.group(1) not in NOT_PARTS:
            extras.setdefault(marker.group(1), []).append(name.group(0))
    return extras


def part_line(extra: str, distributions: list[str]) -> str:
    versions = {name: installed(name) for name in distributions}
    missing = [name for name, version in versions.items() if version is None]
    if len(missing) == len(versions):
        return f"  {extra:<12} not installed (pip install 'facefilter[{extra}]')"
    found = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    lacking = f"; missing {', '.join(missing)}" if missing else ""
    return f"  {extra:<12} {found}{lacking}"


def version_text() -> str:
    """Several lines: facefilter, torch and Python, then one line per optional part."""
    core = ", ".join(
        f"{name} {installed(name) or 'not installed'}" for name in ("torch", "torchvision")
    )
    lines = [f"facefilter {__version__} ({core}; Python {platform.python_version()})"]
    extras = declared_extras()
    if not extras:
        lines.append("optional parts: unknown (facefilter runs from a source tree that pip "
                     "never installed: pip install -e .)")  # fmt: skip
        return "\n".join(lines)
    lines.append("optional parts:")
    lines += [part_line(extra, names) for extra, names in sorted(extras.items())]
    return "\n".join(lines)
