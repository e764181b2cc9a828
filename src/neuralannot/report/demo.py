"""A demo report without training: synthetic samples, pseudo-GTs = their GT parameters with pose noise
growing from sample to sample (so the ranking is visible). Used by ``scripts/report_screenshot.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.sample import Sample
from neuralannot.io.pseudo_gt import PseudoGT


def perturbed_gt_records(samples: list[Sample], noise_rad: float = 0.04, seed: int = 0) -> list[PseudoGT]:
    """One Anny pseudo-GT per synthetic sample: its GT parameters, every pose group perturbed by
    Gaussian noise of ``noise_rad * i`` for the i-th sample; camera = the sample's intrinsics."""
    from neuralannot.io.records import gt_record

    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(samples):
        r = gt_record(s, "gt+noise")
        for k, v in r.params.items():
            if k.endswith("_pose"):
                r.params[k] = (v + rng.normal(0.0, noise_rad * i, v.shape)).astype(np.float32)
        out.append(r)
    return out


def build_demo_report(
    work: str | Path, out: str | Path, kind: str = "mocap", n: int = 6, **kwargs: Any
) -> dict[str, Any]:
    """Synthesize ``n`` samples of ``kind`` in ``work``, write their perturbed-GT pseudo-GT and build
    the report in ``out`` (``kwargs`` go to :func:`~neuralannot.report.build_report`)."""
    from neuralannot.data.loading import load_samples
    from neuralannot.data.synthetic.generator import generate
    from neuralannot.io.pseudo_gt import write_pseudo_gt
    from neuralannot.report.build import build_report

    work = Path(work)
    data = work / f"synth_{kind}"
    generate(kind, n, data, seed=3, shard_size=n, image_size=192, masks=False, progress=False)
    samples, _ = load_samples(data)
    pred = write_pseudo_gt(work / f"{kind}_pgt.json", perturbed_gt_records(samples), {"method": "gt+noise"})
    return build_report(pred, data, out, **kwargs)
