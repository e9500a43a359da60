"""The precomputed annotation writer, checked with PyPI ``neuroglancer``'s reader (not ours)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from neuroglancer.read_precomputed_annotations import AnnotationReader

import ngshow
from ngshow.convert import ConvertError
from ngshow.convert.annotations import index_plan, plan_annotations, write_annotations
from ngshow.convert.run import run

from .test_convert import tree


def table(n: int, kind: str, seed: int = 1) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``n`` annotations of ``kind`` with every property type and two relationships (one a list)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform([0, 0, 0], [300, 200, 40], size=(n, 3))
    b = a + rng.uniform(-8, 8, size=(n, 3)) if kind != "ellipsoid" else rng.uniform(0.5, 4, size=(n, 3))
    if kind == "box":
        b = np.clip(b, [0, 0, 0], [300, 200, 40])
    frame = pd.DataFrame({"ax": a[:, 0], "ay": a[:, 1], "az": a[:, 2], "bx": b[:, 0], "by": b[:, 1], "bz": b[:, 2]})
    frame["id"] = rng.permutation(np.arange(10, 10 + 3 * n, 3, dtype=np.uint64))
    frame["pre"] = rng.integers(1, 60, n)
    frame["partners"] = [list(rng.integers(1, 40, rng.integers(0, 4))) for _ in range(n)]
    frame["score"] = rng.random(n).astype(np.float32)
    frame["depth"] = rng.integers(-300, 300, n).astype(np.int16)
    frame["count"] = rng.integers(0, 100_000, n)  # int64, narrowed to uint32
    frame["colour"] = [f"#{r:02x}{g:02x}{b_:02x}" for r, g, b_ in rng.integers(0, 256, (n, 3))]
    frame["rgba"] = list(rng.integers(0, 256, (n, 4)).astype(np.uint8))
    frame["cls"] = pd.Categorical(rng.choice(["axon", "dendrite", "soma"], n))
    geometry = {"point": {"position": ["ax", "ay", "az"]}, "ellipsoid": {"center": ["ax", "ay", "az"], "radii": ["bx", "by", "bz"]}}.get(
        kind, {"point_a": ["ax", "ay", "az"], "point_b": ["bx", "by", "bz"]}
    )
    options = dict(
        kind=kind, ids="id", relationships={"pre": "pre", "partners": "partners"}, voxel_size=(8, 8, 40),
        # uint32 first: PyPI neuroglancer 2.41.2 gives uint32 an alignment of 3, so its reader pads
        # (wrongly, against the spec and the client) a uint32 that follows another 4-byte property.
        properties=["count", "score", "depth", "colour", "rgba", "cls"], **geometry,
    )
    return frame, options


def geometry_of(annotation: Any, kind: str) -> np.ndarray[Any, Any]:
    parts = {"point": ["point"], "ellipsoid": ["center", "radii"]}.get(kind, ["point_a", "point_b"])
    return np.concatenate([np.asarray(getattr(annotation, p), np.float32) for p in parts])


def expected_geometry(frame: pd.DataFrame, kind: str) -> np.ndarray[Any, Any]:
    cols = ["ax", "ay", "az"] if kind == "point" else ["ax", "ay", "az", "bx", "by", "bz"]
    return frame[cols].to_numpy().astype(np.float32)


@pytest.mark.parametrize("kind, sharded", [("point", True), ("line", False), ("box", True), ("ellipsoid", True)])
def test_every_kind_reads_back_with_neuroglancers_reader(tmp_path: Path, kind: str, sharded: bool) -> None:
    frame, options = table(3000, kind)
    out = tmp_path / "ann"
    write_annotations(frame, out, limit=40, sharded=sharded, workers=2, **options)
    reader = AnnotationReader(f"file://{out}")
    info = reader.metadata
    assert info["annotation_type"] == {"box": "AXIS_ALIGNED_BOUNDING_BOX"}.get(kind, kind.upper())
    assert [p["type"] for p in info["properties"]] == ["uint32", "float32", "int16", "rgb", "rgba", "uint8"]
    assert info["properties"][5]["enum_labels"] == ["axon", "dendrite", "soma"]
    assert ("sharding" in info["by_id"]) == sharded and len(info["spatial"]) > 2
    geometry = expected_geometry(frame, kind)
    names = [p["id"] for p in info["properties"]]
    colours = np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in frame["colour"]])

    # Every annotation by id: geometry, every property, both relationships.
    for i, ident in enumerate(frame["id"]):
        got = reader.by_id[int(ident)]
        assert np.array_equal(geometry_of(got, kind), geometry[i])
        props = dict(zip(names, got.props))
        assert props["score"] == frame["score"][i] and props["depth"] == frame["depth"][i]
        assert props["count"] == frame["count"][i] and props["cls"] == frame["cls"].cat.codes[i]
        assert list(props["colour"]) == list(colours[i]) and list(props["rgba"]) == list(frame["rgba"][i])
        assert [list(s) for s in got.segments] == [[frame["pre"][i]], list(frame["partners"][i])]

    # Every segment's annotations, per relationship.
    partners = frame.explode("partners").dropna(subset=["partners"])
    for rel, source in (("pre", frame), ("partners", partners)):
        for segment, group in source.groupby(rel):
            got = reader.relationships[rel][int(segment)]
            assert sorted(int(a.id) for a in got) == sorted(int(i) for i in group["id"])
        assert int(source[rel].max()) + 1 not in reader.relationships[rel]

    # The spatial index holds every annotation; each level's cells at most ~limit.
    everything = list(reader.get_within_spatial_bounds())
    assert {int(a.id) for a in everything} == set(int(i) for i in frame["id"])
    if kind == "point":
        assert len(everything) == len(frame)  # each in one cell of one level, never twice
    level0 = reader.spatial[0][(0, 0, 0)]
    assert 20 <= len(level0) <= 60  # a uniform sample of about `limit`, not the first rows


def test_a_spatial_query_returns_exactly_the_points_inside(tmp_path: Path) -> None:
    frame, options = table(5000, "point", seed=4)
    out = tmp_path / "ann"
    write_annotations(frame, out, limit=25, workers=2, **options)
    reader = AnnotationReader(f"file://{out}")
    lo, hi = np.array([100.0, 50.0, 10.0]), np.array([140.0, 90.0, 20.0])
    got = {int(a.id) for a in reader.get_within_spatial_bounds(lower_bound=lo, upper_bound=hi)}
    xyz = expected_geometry(frame, "point")
    inside = ((xyz >= lo) & (xyz <= hi)).all(axis=1)
    assert got == {int(i) for i in frame["id"][inside]} and len(got) > 20


def test_a_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    frame, options = table(4000, "point", seed=2)
    write_annotations(frame, tmp_path / "whole", limit=30, workers=2, **options)
    # Stop after the sort plan, as if killed there; then lose one shard of the finished part.
    plans = plan_annotations(frame, tmp_path / "resumed", limit=30, **options)
    run(plans.sort, workers=2, progress=False)
    run(index_plan(plans), workers=2, progress=False)
    shard = next((tmp_path / "resumed" / "by_id").iterdir())
    shard.unlink()
    (tmp_path / "resumed" / ".ngshow" / "annotations" / "done" / "byid" / "0").unlink()
    report = write_annotations(frame, tmp_path / "resumed", limit=30, workers=2, **options)
    assert report.stages[0].skipped_tasks == report.stages[0].tasks  # nothing sorted twice
    assert sum(s.written for s in report.stages) == 1
    assert tree(tmp_path / "whole") == tree(tmp_path / "resumed")
    assert not (tmp_path / "resumed" / ".ngshow").exists()


def test_a_dask_cluster_writes_the_same_bytes(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    frame, options = table(2000, "line", seed=3)
    frame.to_parquet(tmp_path / "table.parquet", row_group_size=700)
    options = {**options, "rows_per_task": 700}
    write_annotations(tmp_path / "table.parquet", tmp_path / "local", workers=2, limit=30, **options)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        report = write_annotations(
            str(tmp_path / "table.parquet"), tmp_path / "dask", executor=client.get_executor(pure=False), limit=30, **options
        )
    assert report.stages[0].tasks == 3  # one sort task per 700-row group
    assert tree(tmp_path / "local") == tree(tmp_path / "dask")


def test_default_ids_count_rows_over_the_whole_table(tmp_path: Path) -> None:
    frame, options = table(900, "point", seed=8)
    frame.drop(columns=["id"]).to_parquet(tmp_path / "t.parquet", row_group_size=200)
    write_annotations(tmp_path / "t.parquet", tmp_path / "out", workers=2, rows_per_task=400,
                      **{k: v for k, v in options.items() if k != "ids"})
    reader = AnnotationReader(f"file://{tmp_path / 'out'}")
    for i in (1, 200, 401, 900):
        assert np.array_equal(reader.by_id[i].point, expected_geometry(frame, "point")[i - 1])
    assert 901 not in reader.by_id


def test_bad_tables_are_refused_with_a_reason(tmp_path: Path) -> None:
    frame, options = table(100, "point")
    frame.loc[5, "id"] = frame.loc[60, "id"]
    with pytest.raises(ConvertError, match="ids must be unique"):  # found by the task reading both
        write_annotations(frame, tmp_path / "dup", workers=1, **options)
    with pytest.raises(ConvertError, match=f"id {frame.loc[5, 'id']} occurs more than once"):  # or later
        write_annotations(frame, tmp_path / "dup2", workers=1, rows_per_task=50, **options)
    with pytest.raises(ngshow.InvalidArray, match="no column"):
        write_annotations(frame, tmp_path / "a", kind="point", position=["ax", "ay", "nope"])
    with pytest.raises(ngshow.InvalidArray, match="polylines"):
        write_annotations(frame, tmp_path / "b", kind="polyline", points="partners")
    with pytest.raises(ngshow.InvalidArray, match="outside the bounds"):
        write_annotations(frame, tmp_path / "c", kind="point", position=["ax", "ay", "az"], upper_bound=[10, 10, 10])
    with pytest.raises(ngshow.InvalidArray, match=".parquet"):
        write_annotations("table.csv", tmp_path / "d", kind="point", position=["x", "y", "z"])


def test_a_million_synapses_with_two_relationships(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(7)
    xyz = rng.uniform([0, 0, 0], [4000, 3000, 300], size=(n, 3))
    frame = pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                          "pre": rng.integers(1, 5000, n), "post": rng.integers(1, 5000, n)})
    out = tmp_path / "synapses"
    write_annotations(frame, out, kind="point", position=["x", "y", "z"], relationships={"pre": "pre", "post": "post"},
                      voxel_size=(8, 8, 40), workers=2)
    reader = AnnotationReader(f"file://{out}")
    ids = np.arange(1, n + 1)
    points = xyz.astype(np.float32)
    # By relationship: every annotation, twice (through its pre and its post segment).
    for rel in ("pre", "post"):
        order = np.argsort(frame[rel].to_numpy(), kind="stable")
        segments = frame[rel].to_numpy()[order]
        starts = np.flatnonzero(np.diff(segments, prepend=-1))
        seen = 0
        for start, stop in zip(starts, [*starts[1:], n]):
            got = reader.relationships[rel][int(segments[start])]
            got_ids = np.array([int(a.id) for a in got])
            want = ids[order[start:stop]]
            assert np.array_equal(np.sort(got_ids), np.sort(want))
            got_points = np.array([a.point for a in got])
            assert np.array_equal(got_points[np.argsort(got_ids)], points[np.sort(want) - 1])
            seen += len(got)
        assert seen == n
    # By id: a random sample of 20 000 (every id takes the reader ~4 minutes), and the ends.
    sample = np.concatenate([[1, n], rng.choice(ids, 20_000, replace=False)])
    for ident, got in zip(sample, [reader.by_id.get(int(i)) for i in sample]):
        a = got.result()
        assert np.array_equal(a.point, points[ident - 1])
        assert [int(s[0]) for s in a.segments] == [frame["pre"][ident - 1], frame["post"][ident - 1]]
    # The finest level: one cell returns only annotations inside it, every one of those.
    info = json.loads((out / "info").read_text())
    finest = info["spatial"][-1]
    size, grid = np.array(finest["chunk_size"]), np.array(finest["grid_shape"])
    cell = (xyz[0] // size).astype(int)
    got = reader.spatial[len(info["spatial"]) - 1][tuple(cell)]
    cell_lo = cell * size
    inside = np.array([a.point for a in got])
    assert len(got) > 0 and ((inside >= cell_lo) & (inside <= cell_lo + size)).all()
    assert len(info["spatial"]) > 3 and (grid > 1).all()
    assert not ngshow.convert.validate(out)


def test_validate_finds_what_is_broken(tmp_path: Path) -> None:
    frame, options = table(800, "box", seed=5)
    for sharded in (True, False):
        write_annotations(frame, tmp_path / f"s{sharded}", limit=30, sharded=sharded, workers=1, **options)
        assert ngshow.convert.validate(tmp_path / f"s{sharded}") == []
    out = tmp_path / "sFalse"
    info = json.loads((out / "info").read_text())
    finest = out / info["spatial"][-1]["key"]
    cell = sorted(finest.iterdir())[0]
    cell.write_bytes(cell.read_bytes()[:-3])
    (out / info["relationships"][0]["key"] / "1").write_bytes(b"\x01" + b"\x00" * 7)
    info["spatial"][1]["chunk_size"][0] *= 3
    info["properties"][0]["type"] = "float64"
    (out / "info").write_text(json.dumps(info))
    messages = [str(p) for p in ngshow.convert.validate(out)]
    assert any("a type of" in m for m in messages), messages
    assert any("grid_shape x chunk_size" in m for m in messages)
    # With the info mended, the entries are read: a cut cell, a short list, annotations lost.
    info["properties"][0]["type"] = "uint32"
    info["spatial"][1]["chunk_size"][0] /= 3
    (out / "info").write_text(json.dumps(info))
    messages = [str(p) for p in ngshow.convert.validate(out)]
    assert any(m.startswith(f"{finest.name}/{cell.name}: ") and "bytes for" in m for m in messages), messages
    assert any("rel_pre/1: 8 bytes for 1 annotations" in m for m in messages)
    assert any("in no spatial cell" in m for m in messages)
    sharded = tmp_path / "sTrue"
    shard = next((sharded / "by_id").iterdir())
    shard.write_bytes(shard.read_bytes()[:40])
    assert any("by_id/" in str(p) for p in ngshow.convert.validate(sharded))


def test_the_command_line_writes_and_validates(tmp_path: Path) -> None:
    from .test_cli import run_cli

    frame, _ = table(500, "point", seed=6)
    frame = frame.rename(columns={"ax": "x", "ay": "y", "az": "z"})[["x", "y", "z", "pre", "score", "colour", "cls"]]
    frame["post_id"] = frame["pre"] + 1000
    frame.to_parquet(tmp_path / "synapses.parquet")
    done = run_cli("convert-annotations", str(tmp_path / "synapses.parquet"), str(tmp_path / "out"), "--kind", "point",
                   "--relationships", "pre=pre,post=post_id", "--properties", "score,colour,cls",
                   "--voxel-size", "8,8,40", "--workers", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    reader = AnnotationReader(f"file://{tmp_path / 'out'}")
    assert [p.id for p in reader.properties] == ["score", "colour", "cls"]
    assert sorted(int(a.id) for a in reader.relationships["post"][int(frame["pre"][0]) + 1000]) == sorted(
        int(i) + 1 for i in np.flatnonzero(frame["pre"] == frame["pre"][0])
    )
    assert run_cli("validate", str(tmp_path / "out")).returncode == 0
    for args, message in [
        (["--position", "x,y,w"], "no column"),
        (["--relationships", "pre"], "NAME=COLUMN"),
    ]:
        bad = run_cli("convert-annotations", str(tmp_path / "synapses.parquet"), str(tmp_path / "bad"), *args)
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert bad.stderr.startswith("ngshow: error:")
    missing = run_cli("convert-annotations", str(tmp_path / "nope.parquet"), str(tmp_path / "bad"))
    assert missing.returncode == 2 and missing.stderr.startswith("ngshow: error:")
