"""`python -m facefilter ...`: the console script, for launchers that start modules
(torchrun, accelerate launch) and for running from a checkout."""

from facefilter.console import run

if __name__ == "__main__":
    run()
