"""``ngshow convert-annotations TABLE OUTPUT ...``: a table of annotations to a precomputed dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cli import _executor, _triple

__all__ = ["build_parser", "main"]


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in _names(text):
        name, sep, column = item.partition("=")
        if not sep or not name or not column:
            raise argparse.ArgumentTypeError(f"expected NAME=COLUMN[,NAME=COLUMN...], got {text!r}")
        out[name] = column
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, as every ngshow command
        print(f"ngshow: error: {message} (see ngshow convert-annotations --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ngshow convert-annotations",
        description="Write a table of annotations (.parquet or .csv) as a precomputed annotation dataset.",
        epilog="Example: ngshow convert-annotations synapses.parquet out/synapses --kind point "
        "--position x,y,z --relationships pre=pre_id,post=post_id --voxel-size 8,8,40",
    )
    parser.add_argument("table", help="a .parquet file (read one row group at a time) or a .csv file")
    parser.add_argument("output", help="destination: a path, file://, s3:// or gs:// URL")
    parser.add_argument("--kind", choices=("point", "line", "box", "ellipsoid"), default="point")
    parser.add_argument("--position", type=_names, metavar="X,Y,Z", help="columns of a point (default x,y,z)")
    parser.add_argument("--point-a", type=_names, metavar="COLS", help="columns of a line's start / a box's corner")
    parser.add_argument("--point-b", type=_names, metavar="COLS", help="columns of a line's end / the other corner")
    parser.add_argument("--center", type=_names, metavar="COLS", help="columns of an ellipsoid's centre")
    parser.add_argument("--radii", type=_names, metavar="COLS", help="columns of an ellipsoid's radii")
    parser.add_argument("--ids", metavar="COLUMN", help="unique uint64 ids (default 1..N)")
    parser.add_argument("--properties", type=_names, default=[], metavar="COLS",
                        help="property columns: numbers, '#rrggbb' colours, categories")
    parser.add_argument("--relationships", type=_pairs, default={}, metavar="NAME=COLUMN,...",
                        help="related segment ids, e.g. pre=pre_id,post=post_id")
    parser.add_argument("--voxel-size", type=_triple, default=(1.0, 1.0, 1.0), metavar="X,Y,Z",
                        help="nm per unit of the coordinates (default 1,1,1)")
    parser.add_argument("--limit", type=int, default=2000, help="most annotations in one spatial cell (default 2000)")
    parser.add_argument("--unsharded", action="store_true", help="one file per entry instead of shards")
    parser.add_argument("--executor", default="processes", metavar="processes|threads|tcp://HOST:PORT",
                        help="a local process pool (default), threads, or a dask scheduler address")
    parser.add_argument("--workers", type=int, default=None, help="local workers (default: cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 on success, 2 for bad input, 1 if the run failed."""
    parser = build_parser()
    args: Any = parser.parse_args(argv)
    from ..errors import InvalidArray, NgshowError
    from .annotations import write_annotations

    geometry = {
        k: getattr(args, k) for k in ("position", "point_a", "point_b", "center", "radii") if getattr(args, k) is not None
    }
    if args.kind == "point" and not geometry:
        geometry["position"] = ["x", "y", "z"]
    table: Any = args.table
    try:
        suffix = Path(args.table).suffix.lower()
        if suffix == ".csv":
            import pandas as pd

            table = pd.read_csv(args.table)
        elif suffix != ".parquet":
            raise InvalidArray(f"{args.table}: expected a .parquet or .csv table")
        elif "://" not in args.table and not Path(args.table).is_file():
            raise InvalidArray(f"{args.table}: no such file")
        with _executor(args.executor, args.workers) as ex:
            report = write_annotations(
                table, args.output, executor=ex, progress=not args.no_progress, workers=args.workers,
                kind=args.kind, ids=args.ids, properties=args.properties, relationships=args.relationships,
                voxel_size=args.voxel_size, limit=args.limit, sharded=not args.unsharded, **geometry,
            )
    except (InvalidArray, OSError, ValueError) as e:
        print(f"ngshow: error: {e}", file=sys.stderr)
        return 2
    except NgshowError as e:
        print(f"ngshow convert-annotations: {e}", file=sys.stderr)
        return 1
    for s in report.stages:
        done = f" ({s.skipped_tasks} already done)" if s.skipped_tasks else ""
        print(f"{s.name}: {s.tasks} tasks{done}, {s.written} objects, {s.seconds:.1f} s")
    print(f"wrote {report.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
