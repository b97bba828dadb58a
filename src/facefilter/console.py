"""The `facefilter` console script: imports the CLI (torch, seconds on a cold start)
inside the Ctrl-C guard, so an interrupt while starting up is one line, not a traceback."""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:  # no torch to import for this
        from facefilter.cli.version import version_text

        print(version_text())
        sys.exit(0)
    try:
        from facefilter.cli.main import main
    except KeyboardInterrupt:
        print("\nfacefilter: interrupted while starting; nothing was written", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
