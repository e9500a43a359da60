"""Command line: ``ngshow convert INPUT OUTPUT ...`` and ``ngshow validate OUTPUT``.

The top-level ``ngshow`` CLI hooks these in with :func:`add_convert_arguments` /
:func:`run_convert` and :func:`add_validate_arguments` / :func:`run_validate`;
``python -m ngshow.convert.cli`` runs them standalone.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..readers import Opened

__all__ = [
    "add_convert_arguments",
    "add_validate_arguments",
    "build_parser",
    "main",
    "run_convert",
    "run_validate",
]


def _triple(text: str) -> tuple[float, ...]:
    parts = [p for p in text.replace("x", ",").split(",") if p]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected X,Y,Z (or one number), got {text!r}")
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None


def _levels(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ngshow convert``."""
    parser.add_argument("input", nargs="+", help="any file ngshow opens: .npy, file.h5/dataset, "
                        "file.zarr/group/array, img.ome.zarr, .tif, a folder (or glob*.tif, quoted or not) of "
                        ".tif planes, ...")
    parser.add_argument("output", help="destination: a path, file://, s3:// or gs:// URL")
    parser.add_argument("--segmentation", action="store_true", help="the input holds labels")
    parser.add_argument("--voxel-size", type=_triple, default=None, metavar="X,Y,Z",
                        help="nm per voxel (default: from the file, else 1,1,1)")
    parser.add_argument("--offset", type=_triple, default=None, metavar="X,Y,Z",
                        help="voxel offset (default: from the file, else 0,0,0)")
    parser.add_argument("--chunk-size", type=_triple, default=(64, 64, 64), metavar="X,Y,Z")
    parser.add_argument("--mip-levels", type=_levels, default="auto", metavar="N|auto",
                        help="downsampled scales below scale 0 (default: until one chunk)")
    parser.add_argument("--encoding", choices=("raw", "jpeg", "compressed_segmentation"),
                        help="default: compressed_segmentation for uint32/uint64 labels, else raw")
    parser.add_argument("--jpeg-quality", type=int, default=85)
    parser.add_argument("--mesh", action="store_true", help="also forge and merge meshes")
    parser.add_argument("--mesh-format", choices=("multires", "legacy"), default="multires",
                        help="multi-resolution Draco meshes (default) or legacy <id>:0 fragments")
    parser.add_argument("--mesh-mip", type=_levels, default="auto", metavar="N|auto")
    parser.add_argument("--segment-properties", metavar="FILE.json",
                        help='per-segment properties (segmentations), a JSON object of columns: '
                             '{"ids": [...], "label": [...], "<name>": [numbers], ...}')
    parser.add_argument("--sharding", choices=("auto", "on", "off"), default="auto",
                        help="Neuroglancer's sharded format: on, off, or auto (default: for scales "
                             "of more than 10000 chunks)")
    parser.add_argument("--executor", default="processes", metavar="processes|threads|tcp://HOST:PORT",
                        help="a local process pool (default), threads, or a dask scheduler address")
    parser.add_argument("--workers", type=int, default=None, help="local workers (default: cores)")
    parser.add_argument("--memory-budget", type=int, default=512, metavar="MiB",
                        help="memory one task may use (default 512)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (stages, tasks, files, bytes, memory per task) and stop")


def add_validate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ngshow validate``."""
    parser.add_argument("output", help="the dataset's root: a path or URL")
    parser.add_argument("--full", action="store_true",
                        help="decode every chunk and parse every mesh fragment")


@contextmanager
def _executor(spec: str, workers: int | None) -> Iterator[Executor | None]:
    if spec == "processes":
        yield None  # run() makes (and shuts down) its own pool
    elif spec == "threads":
        with ThreadPoolExecutor(workers) as pool:
            yield pool
    elif spec.startswith(("tcp://", "tls://", "ucx://")):
        from distributed import Client

        with Client(spec) as client:  # type: ignore[no-untyped-call]
            yield client.get_executor(pure=False)
    else:
        raise ValueError(f"--executor must be processes, threads or tcp://..., got {spec!r}")


def _open_inputs(specs: Sequence[str], output: str) -> Opened:
    """The one input of ``ngshow convert``: a file, or several 2-D TIFF planes (``stack/*.tif``
    expanded by the shell) as one volume in natural order.

    Raises
    ------
    InvalidArray
        For several inputs that are not all TIFF planes, or an output that is an existing file.
    """
    from ..errors import InvalidArray
    from ..readers import group_plane_arguments, open_file, open_planes

    if os.path.isfile(output):
        raise InvalidArray(
            f"the output {output} is an existing file; the last argument is the folder (or URL) to write"
        )
    if len(specs) == 1:
        return open_file(specs[0])
    grouped = group_plane_arguments(specs)
    if len(grouped) == 1 and isinstance(grouped[0], tuple):
        return open_planes(grouped[0])
    odd = next((s for s in grouped if isinstance(s, str)), None)
    raise InvalidArray(
        f"convert takes one input, got {len(specs)}; several are read only as the 2-D TIFF planes "
        f"of one volume (stack/*.tif), and {odd or 'they form more than one run of planes'} is not one"
    )


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """ngshow's log warnings (a level of the file not used, a unit assumed) as ``ngshow: warning:`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("ngshow: warning: %(message)s"))
    root = logging.getLogger("ngshow")
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def run_convert(args: argparse.Namespace) -> int:
    """Run ``ngshow convert``; returns the exit status."""
    from . import plan, run
    from ..errors import NgshowError
    from .properties import load_table

    try:
        with _warnings_to_stderr():
            table = load_table(args.segment_properties) if args.segment_properties else None
            opened = _open_inputs(args.input, args.output)
            try:
                p = plan(
                    opened,  # every level of the file, and its label properties
                    args.output,
                    kind="segmentation" if args.segmentation else None,  # else the file's say, else image
                    voxel_size=args.voxel_size,
                    offset=None if args.offset is None else tuple(int(o) for o in args.offset),
                    chunk_size=tuple(int(c) for c in args.chunk_size),
                    mip_levels=args.mip_levels,
                    encoding=args.encoding,
                    mesh=args.mesh,
                    mesh_mip=args.mesh_mip,
                    jpeg_quality=args.jpeg_quality,
                    memory_budget=args.memory_budget << 20,
                    segment_properties=table,
                    sharding=args.sharding,
                    mesh_format=args.mesh_format,
                )
            finally:
                opened.close()
        if args.dry_run:
            print(p.describe())
            return 0
        with _executor(args.executor, args.workers) as ex:
            report = run(p, ex, progress=not args.no_progress, workers=args.workers)
    except (NgshowError, OSError, ValueError) as e:  # bad input: one line, no traceback
        print(f"ngshow: error: {e}", file=sys.stderr)
        return 2
    for s in report.stages:
        done = f" ({s.skipped_tasks} already done)" if s.skipped_tasks else ""
        mb = (s.bytes_in + s.bytes_out) / 1e6
        print(f"{s.name}: {s.tasks} tasks{done}, {s.written} files, {mb:.1f} MB in+out, {s.seconds:.1f} s")
    print(f"wrote {report.dest}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Run ``ngshow validate``; exit status 0 when the dataset has no problems, 1 otherwise."""
    from . import validate

    problems = validate(args.output, full=args.full)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {args.output}", file=sys.stderr)
        return 1
    print(f"{args.output}: ok")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ngshow", description="precomputed datasets")
    sub = parser.add_subparsers(dest="command", required=True)
    add_convert_arguments(sub.add_parser("convert", help="convert an array to precomputed"))
    add_validate_arguments(sub.add_parser("validate", help="check a precomputed dataset"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``convert`` or ``validate``, as ``python -m ngshow.convert.cli`` does."""
    args: Any = build_parser().parse_args(argv)
    return run_convert(args) if args.command == "convert" else run_validate(args)


if __name__ == "__main__":
    raise SystemExit(main())
