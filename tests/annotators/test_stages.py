"""Per-sample stages: the batch loop keeps sample order, resumes from its part files, names the files."""

from dataclasses import dataclass, replace

import numpy as np
import pytest

from neuralannot.annotators.stages import (
    refine_file,
    resumable_batches,
    run_batches,
    stage_digest,
    stage_summary,
)
from neuralannot.io.pseudo_gt import PseudoGT, read_pseudo_gt, write_pseudo_gt


@dataclass
class _Sample:
    id: str


@dataclass
class _Options:
    step: float = 1.0
    batch_size: int = 2


def _records(n: int) -> list[PseudoGT]:
    rest = {"root_pose": np.zeros(3, np.float32), "body_pose": np.zeros((21, 3), np.float32),
            "phenotype": np.full(6, 0.5, np.float32)}
    params = [{**rest, "trans": np.full(3, i, np.float32)} for i in range(n)]
    return [PseudoGT(f"s{i}", "anny", "body", p, None, {}) for i, p in enumerate(params)]


def _shift(calls: list, step: float = 1.0):
    def batch_fn(batch, recs):
        calls.append([s.id for s in batch])
        moved = [{**r.params, "trans": r.params["trans"] + step} for r in recs]
        return [replace(r, params=p, quality={"shift": {}}) for r, p in zip(recs, moved, strict=True)]

    return batch_fn


def test_batches_keep_sample_order_and_resume_from_finished_parts(tmp_path):
    samples = [_Sample(f"s{i}") for i in range(5)]
    calls = []
    out, wall = run_batches(samples, _records(5)[::-1], _shift(calls), 2, "shift", parts_dir=tmp_path / "p")
    assert [r.sample_id for r in out] == [s.id for s in samples] and wall >= 0
    assert calls == [["s0", "s1"], ["s2", "s3"], ["s4"]]
    np.testing.assert_array_equal(out[3].params["trans"], np.full(3, 4.0))
    parts = sorted((tmp_path / "p").glob("part-*.jsonl"))
    assert len(parts) == 3
    parts[1].unlink()  # killed before the second batch was saved
    calls.clear()
    again, _ = run_batches(samples, _records(5), _shift(calls), 2, "shift", parts_dir=tmp_path / "p")
    assert calls == [["s2", "s3"]]  # only the lost batch runs again
    assert [r.to_dict() for r in again] == [r.to_dict() for r in out]
    summary = stage_summary("shift", again, 1.0, _Options())
    assert summary["refined"] == 5 and summary["samples"] == 5 and summary["batch_size"] == 2
    with pytest.raises(ValueError, match="shift: 1 samples have no pseudo-GT"):
        run_batches(samples, _records(4), _shift([]), 2, "shift")


def test_given_index_batches_fill_sample_order_and_count_what_is_read_back(tmp_path):
    """The loop under every stage and SMPLify-X fit: batches of any indices (e.g. grouped by joint
    set), records placed by index, finished batches read back and counted."""
    samples = [_Sample(f"s{i}") for i in range(5)]
    recs, calls = _records(5), []

    def compute(ids):
        calls.append(ids)
        return _shift([])([samples[i] for i in ids], [recs[i] for i in ids])

    batches = [[0, 3], [1, 4], [2]]
    out, resumed, _ = resumable_batches(samples, batches, compute, "shift", parts_dir=tmp_path / "p")
    assert calls == batches and resumed == 0
    assert [r.sample_id for r in out] == [s.id for s in samples]
    np.testing.assert_array_equal(out[3].params["trans"], np.full(3, 4.0))
    calls.clear()
    again, resumed, _ = resumable_batches(samples, [*batches, [0, 2]], compute, "shift",
                                          parts_dir=tmp_path / "p")  # fmt: skip
    assert calls == [] and resumed == 7  # [0, 2] is made of saved samples too
    assert [r.to_dict() for r in again] == [r.to_dict() for r in out]
    partial, _, _ = resumable_batches(samples, [[1]], compute, "shift")
    assert partial[1] is not None and partial.count(None) == 4  # no batch, no record


def test_refine_file_rewrites_in_place_and_names_its_resume_folder(tmp_path):
    def shift_stage(samples, records, body_model, options, progress, parts_dir, device):
        out, wall = run_batches(samples, records, _shift([], options.step), options.batch_size, "shift",
                                progress, parts_dir)  # fmt: skip
        return out, stage_summary("shift", out, wall, options)

    samples = [_Sample(f"s{i}") for i in range(3)]
    path = write_pseudo_gt(tmp_path / "p.json", _records(3), {"method": "test"})
    summary = refine_file(shift_stage, _Options(), samples, path, tmp_path / "work")
    records, meta = read_pseudo_gt(path)
    assert meta["method"] == "test" and meta["shift"] == summary
    np.testing.assert_array_equal(records[2].params["trans"], np.full(3, 3.0))
    assert (tmp_path / "work" / "shift_stage" / stage_digest(_records(3), _Options())).is_dir()
    # another input or other options: another folder, so stale batches are never reused
    assert stage_digest(records, _Options()) != stage_digest(_records(3), _Options())
    assert stage_digest(_records(3), _Options(step=2.0)) != stage_digest(_records(3), _Options())
