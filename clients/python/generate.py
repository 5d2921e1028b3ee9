"""Generates the gRPC stubs from ../../proto into sqlgate_client/_generated (not committed).

`pip install` does the same in its build step (setup.py); this script is for
working in the source tree (run-tests calls it)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _build_stubs import HERE, generate  # noqa: E402

OUT = os.path.join(HERE, "sqlgate_client", "_generated")


def main():
    try:
        generate(OUT)
    except (RuntimeError, FileNotFoundError) as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
