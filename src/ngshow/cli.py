"""The ``ngshow`` command: view array files in Neuroglancer.

``ngshow em.h5/raw --segmentation em.h5/labels --voxel-size 8,8,40``
"""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from .errors import InvalidArray, NgshowError
from .readers import SUFFIXES, Opened, group_plane_arguments, open_file, open_planes

__all__ = ["main", "build_parser"]


def _voxel_size(text: str) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,Z in nanometres, got {text!r}") from None
    if min(x, y, z) <= 0:
        raise argparse.ArgumentTypeError("voxel sizes must be > 0")
    return (x, y, z)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _units(text: str) -> str | list[str]:
    return text.split(",") if "," in text else text


def _axes(text: str) -> str | list[str]:
    return text.split(",") if "," in text else text


def _is_precomputed(spec: str) -> bool:
    """A precomputed dataset: a ``precomputed://``, ``s3://`` or ``gs://`` URL, or a folder with an
    ``info`` file."""
    return spec.startswith(("precomputed://", "s3://", "gs://")) or Path(spec, "info").is_file()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngshow",
        description="Show array files in Neuroglancer, served from this machine.",
        epilog=f"File types: {', '.join(SUFFIXES)}. Inside HDF5/zarr/N5 files name the array as FILE/PATH "
        "(FILE.h5:/PATH also works); several 2-D .tif planes (stack/*.tif) are one volume, in natural order. "
        "Also: `ngshow convert INPUT OUTPUT ...` (to precomputed), `ngshow validate OUTPUT`, "
        "`ngshow mesh LABELS DIR` (mesh files), `ngshow movie KEYFRAMES OUT.mp4 [FILE...]` (movies), "
        "`ngshow convert-annotations TABLE OUTPUT` (annotations).",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="arrays to show (kind guessed from dtype)")
    parser.add_argument("--segmentation", action="append", default=[], metavar="FILE", help="show FILE as labels")
    parser.add_argument("--image", action="append", default=[], metavar="FILE", help="show FILE as an image")
    parser.add_argument("--voxel-size", type=_voxel_size, metavar="X,Y,Z", help="voxel size in nm (default: from the file, else 1,1,1)")
    parser.add_argument("--axes", metavar="NAMES", help="axis names in the array's order, e.g. tczyx or t,c,z,y,x (t: time, c: channel)")
    parser.add_argument("--scale", type=_floats, metavar="S,...", help="voxel size per axis, in the array's order and each axis's unit")
    parser.add_argument("--translate", type=_floats, metavar="T,...", help="position of index 0 per axis, in the array's order")
    parser.add_argument("--units", type=_units, metavar="UNIT[,...]", help="one unit for all spatial axes (um) or one per axis (s,,um,um,um)")
    parser.add_argument("--bind", default="127.0.0.1", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    parser.add_argument("--state", metavar="FILE|URL", help="open with this view: a state JSON file (viewer.save_state) or a Neuroglancer URL")
    parser.add_argument("--screenshot", metavar="PNG", help="render headless, write a PNG and exit (needs Chromium)")
    parser.add_argument("--size", type=_size, default=(1024, 768), metavar="WxH", help="screenshot size (default 1024x768)")
    return parser


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError("screenshot size must be positive")
    return (width, height)


def mesh_command(argv: Sequence[str]) -> int:
    """``ngshow mesh LABELS OUT``: write one mesh file per label with ngshow's own mesher."""
    parser = argparse.ArgumentParser(prog="ngshow mesh", description="Mesh the labels of a segmentation file.")
    parser.add_argument("labels", metavar="FILE", help="a (z, y, x) label array file (FILE/PATH inside containers)")
    parser.add_argument("output", metavar="DIR", help="folder for the mesh files (made if missing)")
    parser.add_argument("--ids", type=_ids, help="comma-separated labels (default: every nonzero label)")
    parser.add_argument("--format", choices=["obj", "ply", "precomputed"], default="obj")
    parser.add_argument("--voxel-size", type=_voxel_size, metavar="X,Y,Z", help="nm (default: from the file, else 1,1,1)")
    parser.add_argument("--no-simplify", action="store_true", help="keep every marching-cubes triangle")
    args = parser.parse_args(argv)

    from .mesh import mesh, mesh_all

    try:
        opened = open_file(args.labels)
        labels, _ = opened.volume(channels=False)
        voxel_size = args.voxel_size or opened.voxel_size or (1.0, 1.0, 1.0)
        simplify = not args.no_simplify
        if args.ids is None:
            meshes = mesh_all(labels, voxel_size=voxel_size, simplify=simplify)
        else:
            meshes = {i: mesh(labels, i, voxel_size=voxel_size, simplify=simplify) for i in args.ids}
        opened.close()
    except (NgshowError, OSError, ValueError) as e:
        print(f"ngshow: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for label, m in meshes.items():
        if args.format == "obj":
            (out / f"{label}.obj").write_text(m.to_obj())
        elif args.format == "ply":
            (out / f"{label}.ply").write_bytes(m.to_ply())
        else:
            (out / str(label)).write_bytes(m.to_precomputed())
    print(f"wrote {len(meshes)} meshes to {out}")
    return 0


def _ids(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input).

    ``ngshow convert ...`` and ``ngshow validate ...`` go to :mod:`ngshow.convert.cli`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("convert", "validate"):
        from .convert import cli as convert_cli

        return convert_cli.main(argv)
    if argv and argv[0] == "mesh":
        return mesh_command(argv[1:])
    if argv and argv[0] == "movie":
        from .movie import main as movie_main

        return movie_main(argv[1:])
    if argv and argv[0] == "convert-annotations":
        from .convert import annotations_cli

        return annotations_cli.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs: list[tuple[str | tuple[str, ...], str | None]] = [(f, None) for f in group_plane_arguments(args.files)]
    inputs += [(f, "segmentation") for f in args.segmentation]
    inputs += [(f, "image") for f in args.image]
    if not inputs and not args.state:
        parser.print_usage(sys.stderr)
        print("ngshow: error: give at least one FILE (or --state)", file=sys.stderr)
        return 2

    import ngshow  # the server and client only once the arguments are known good

    opened: list[tuple[Opened, str | None]] = []
    datasets = [spec for spec, _ in inputs if isinstance(spec, str) and _is_precomputed(spec)]
    try:
        saved = ngshow.load_state(args.state) if args.state else None
        for spec, kind in inputs:
            if isinstance(spec, tuple):
                opened.append((open_planes(spec), kind))
            elif spec not in datasets:
                opened.append((open_file(spec), kind))
        ngshow.set_server_bind_address(args.bind, args.port)
        viewer = ngshow.Viewer()
        for spec in datasets:  # buckets are read here, with this machine's credentials
            viewer.add_precomputed(spec, through_ngshow=spec.startswith(("s3://", "gs://")))
        if args.voxel_size and args.scale:
            raise InvalidArray("give --scale (every axis, array order) or --voxel-size (x,y,z in nm), not both")
        space_args = {
            "axes": _axes(args.axes) if args.axes else None,
            "scale": args.scale,
            "translate": args.translate,
            "units": args.units,
        }
        for item, kind in opened:
            viewer.add(
                item,
                name=item.name if item.name not in viewer.layers else None,
                kind=kind,  # type: ignore[arg-type]
                voxel_size=None if args.scale else args.voxel_size,  # else the file's, else 1 nm
                **space_args,
            )
        if saved is not None:
            viewer.apply_state(saved)
    except (NgshowError, OSError) as e:
        print(f"ngshow: error: {e}", file=sys.stderr)
        ngshow.stop()
        return 2

    if args.screenshot:
        from .figures import DEFAULT_TILE

        if max(args.size) > DEFAULT_TILE and "layout" not in viewer.state.json:
            with viewer.txn() as s:  # a figure this big is tiled, which needs one 2-D panel
                s.layout = "xy"
        try:
            ngshow.screenshot(viewer, args.screenshot, size=args.size)
        except (NgshowError, TimeoutError) as e:
            print(f"ngshow: error: {e}", file=sys.stderr)
            return 2
        finally:
            ngshow.stop()
        print(f"wrote {args.screenshot}")
        return 0

    try:  # from here on Ctrl-C is the normal way out
        for spec in datasets:
            print(f"{spec}: precomputed dataset")
        for name, layer in viewer.layers.items():
            guessed = " (guessed)" if layer.kind_guessed else ""
            source = layer.source
            pyramid = f", {len(source.levels)} levels" if len(source.levels) > 1 else ""
            assumed = " (no voxel size in the file: 1 nm assumed; pass --voxel-size or --scale)" if source.space.assumed else ""
            print(f"{name}: {layer.kind}{guessed}, shape {source.shape}, {source.dtype}{pyramid}; "
                  f"axes {source.space.describe()}{assumed}")
        print(viewer.url, flush=True)
        if not args.no_browser:
            webbrowser.open(viewer.url)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        ngshow.stop()
        for item, _ in opened:
            item.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
