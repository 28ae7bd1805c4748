"""``python -m xdisruptor --version``: which xdisruptor this is."""

import argparse
import sys

from . import __version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xdisruptor",
                                     description="xdisruptor: shared-memory rings for C++ and Python")
    parser.add_argument("--version", action="version", version=f"xdisruptor {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
