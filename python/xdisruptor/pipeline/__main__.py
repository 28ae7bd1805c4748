"""python3 -m xdisruptor.pipeline run|validate FILE [--set name=value ...]"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m xdisruptor.pipeline",
        description="Run or check a pipeline file (TOML): a ring, a producer command and "
                    "stages (C++ programs or Python module:function handlers).")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "start every stage, then the producer; live view; summary"),
                       ("validate", "check the file without running anything")):
        p = sub.add_parser(name, help=text)
        p.add_argument("file")
        p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a [vars] entry")
        p.add_argument("--ring", help="ring name (default: [ring] name, or file stem + pid)")
        if name == "run":
            p.add_argument("--view", choices=("auto", "tty", "lines", "off"), default="auto",
                           help="live view: redrawn in place (tty), a block every 5 s "
                                "(lines), or none; auto picks by the terminal")
    sub.add_parser("stage", help="(internal) run one Python stage from its environment")
    sub.add_parser("record", help="(internal) run the [journal] recorder from its environment")
    args = parser.parse_args(argv)

    if args.command == "stage":
        from ._stage import main as stage_main
        return stage_main()
    if args.command == "record":
        from ._record import main as record_main
        return record_main()

    from ._config import ConfigError, load
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
        overrides[key] = value
    try:
        spec = load(args.file, overrides=overrides, ring_name=args.ring)
    except ConfigError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        print(f"{args.file}: {len(e.errors)} problem{'s' if len(e.errors) > 1 else ''}",
              file=sys.stderr)
        return 2
    if args.command == "validate":
        print(f"{args.file}: OK: ring {spec.ring} ({spec.capacity} slots, "
              f"{spec.dtype.itemsize}-byte events), {len(spec.stages)} stages in order: "
              + ", ".join(s.name + (f" (after {', '.join(s.after)})" if s.after else "")
                          for s in spec.stages))
        return 0
    from ._launcher import Launcher
    return Launcher(spec, view=args.view).run()


if __name__ == "__main__":
    sys.exit(main())
