"""Read a dataset into memory for one job: the part kept, unusable samples refused or counted."""

from __future__ import annotations

from pathlib import Path

from neuralannot.bodies.parts import MODEL_PART
from neuralannot.data.adapters.checks import check_unique_ids
from neuralannot.data.adapters.folder import SkipReport
from neuralannot.data.adapters.registry import detect_format, load_any
from neuralannot.data.sample import Sample, SampleError

__all__ = ["load_samples"]


def load_samples(
    data: str | Path,
    part: str | None = None,
    skip_bad: bool = False,
    needs_3d: bool = False,
    limit: int | None = None,
    images: bool = False,
    keep_gt: bool = True,
    joint_map: str | Path | dict | None = None,
    allow_outside_root: bool = False,
) -> tuple[list[Sample], SkipReport]:
    """Read a dataset into memory (joints and boxes only; images stay on disk).

    ``part`` keeps the samples of that part (``hand`` keeps both hands). Samples unusable for the
    job (no valid joint; no 3D joints in MoCap mode) raise :class:`SampleError`, or are skipped and
    counted with ``skip_bad``; with ``images`` and ``skip_bad`` so are samples whose image cannot be
    decoded. ``keep_gt=False`` drops the evaluation-only GT (``gt``) to save memory on big sets.
    ``joint_map``: dataset joint name → keypoint name (folder format; ``--joint-map``).
    Sample ids must be unique (:class:`DatasetFormatError` naming the duplicates); folder-format images
    must lie inside the dataset folder unless ``allow_outside_root``.
    """
    report = SkipReport()
    samples: list[Sample] = []
    fmt = detect_format(data)
    options = {"allow_outside_root": allow_outside_root} if fmt == "folder" else {}
    for s in load_any(data, fmt, skip_bad=skip_bad, report=report, joint_map=joint_map, **options):
        if part is not None and MODEL_PART.get(s.part) != MODEL_PART.get(part, part):
            continue
        problem = None
        if not (s.joints_2d[:, 2] > 0).any() and (s.joints_3d is None or not (s.joints_3d[:, 3] > 0).any()):
            problem, kind = "no valid joint", "no_joints"
        elif needs_3d and (s.joints_3d is None or not (s.joints_3d[:, 3] > 0).any()):
            problem, kind = "MoCap mode needs GT 3D joints, the sample has none", "no_3d"
        if problem:
            if not skip_bad:
                raise SampleError(problem, s.id, str(data), kind=kind)
            report.skip(kind, f"{s.id}: {problem}")
            continue
        if not keep_gt:
            s.gt = None
        samples.append(s)
        if limit is not None and len(samples) >= limit:
            break
    check_unique_ids((s.id for s in samples), data)
    if skip_bad and images:
        from neuralannot.data.crops import drop_unreadable_images

        samples = drop_unreadable_images(samples, report)
    if not samples:
        raise SampleError(f"no usable samples of part {part or 'any'!r} in {data} ({report})")
    sets = {s.joint_set for s in samples}
    if len(sets) > 1:
        raise SampleError(f"{data}: samples use several joint sets {sorted(sets)}; annotate them separately")
    return samples, report
