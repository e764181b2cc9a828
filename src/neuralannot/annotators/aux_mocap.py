"""Auxiliary 3D supervision for wild-mode training: a MoCap set trained jointly.

The wild annotator learns from 2D joints only, which leave depth and facing to the image. A MoCap
set with GT 3D joints (H36M beside COCO, as the paper's two-stage variant trains on both; a
synthetic ``synth --kind mocap`` set here) teaches the same network what 3D poses its image
features mean: every training step adds one batch of that set, with the MoCap loss (L1 on its 3D
joints after the best translation, Eq. 1) on top of the wild 2D loss (Eq. 2) of the same
prediction. Only the main set is annotated; the auxiliary set may use another joint set (its
keypoints come from that set's regressor) and has its own images. A network that reads the 2D joints
(as coordinates, sampled image features or end-part crops; not heatmaps) reads the auxiliary
samples' joints converted into the main set by name (:func:`~neuralannot.bodies.joint_names.
convert_joints`: H36M's 17 joints give 12 of COCO's 23, shoulders to ankles; the rest read as
missing), while its loss keeps the auxiliary set's own joints.

In the crop frame (wild mode with the virtual camera) the network's rotations live in the crop's
camera, whose optical axis is the real ray through the crop centre, so the auxiliary 3D joints are
turned into that frame before the loss (:func:`crop_frame_joints`).

Batches are drawn per global step from a generator seeded by ``(seed, step)``: a resumed run draws
the same auxiliary batches as an uninterrupted one.

Wild-mode bodies and hands train with one by default (``AnnotatorConfig.aux_data``, unset: the part's
default; ``none`` turns it off; :func:`config_aux`). ``--aux-data synthetic[:N]`` needs no data of the
user's: an embedded 3D set of N (default
:data:`SYNTHETIC_AUX_N`) synthetic samples of the part (``synth --kind`` :data:`SYNTHETIC_AUX_KINDS`,
seed :data:`SYNTHETIC_AUX_SEED`: Anny, CC0, with the CMU pose library) is generated once into the
cache (``$NEURALANNOT_CACHE/aux``) and reused (:func:`resolve_aux_data`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from neuralannot.annotators.config_defaults import embedded_aux
from neuralannot.annotators.neural import _masked_mean
from neuralannot.annotators.state import samples_digest, short_digest
from neuralannot.bodies.joint_names import conversion_indices, convert_joints
from neuralannot.bodies.joints import get_regressor, untranslated_keypoints
from neuralannot.data.crop_cache import crop_centre
from neuralannot.data.transforms import hflip_joints_3d
from neuralannot.geometry import ray_rotation
from neuralannot.geometry.alignment import translation_fit
from neuralannot.paths import cache_dir
from neuralannot.utils.atomic import give_default_mode

__all__ = [
    "AuxMocap", "aux_problem", "check_aux_samples", "config_aux", "crop_frame_joints", "load_aux",
    "resolve_aux_data",
]  # fmt: skip

log = logging.getLogger(__name__)

#: ``--aux-data synthetic``: the synthetic 3D kind generated for each part, its size and seed
SYNTHETIC_AUX_KINDS = {"body": "wild3d", "hand": "hand", "lhand": "hand", "rhand": "hand", "face": "face3d"}
SYNTHETIC_AUX_N = 2000
SYNTHETIC_AUX_SEED = 9000


def resolve_aux_data(data, part: str, progress: bool = True) -> Path:
    """The folder of the auxiliary set ``data``: a path as given, or for ``synthetic`` /
    ``synthetic:N`` the embedded synthetic 3D set of the ``part`` (generated into the cache on first
    use; concurrent runs each generate into their own folder and the first one's is kept)."""
    from neuralannot.data.synthetic.generator import generate

    spec = str(data)
    if not embedded_aux(spec):
        return Path(data)
    if Path(spec).exists():
        raise ValueError(f"--aux-data {spec!r} names the embedded synthetic set, and a file or folder of "
                         f"that name exists here: pass its absolute path to read it")  # fmt: skip
    count = spec.partition(":")[2] or str(SYNTHETIC_AUX_N)
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--aux-data {spec!r}: expected synthetic or synthetic:N with N >= 1 samples")
    if part not in SYNTHETIC_AUX_KINDS:
        raise ValueError(f"--aux-data synthetic: no synthetic 3D set for part {part!r}")
    kind, n = SYNTHETIC_AUX_KINDS[part], int(count)
    final = cache_dir() / "aux" / f"{kind}_{n}_s{SYNTHETIC_AUX_SEED}"
    if _complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    log.info("auxiliary set: generating %d synthetic %s samples into %s (once)", n, kind, final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        generate(kind, n, tmp, seed=SYNTHETIC_AUX_SEED, masks=False, progress=progress)
        give_default_mode(tmp)  # a shared cache: not mkdtemp's 0700
        try:
            tmp.rename(final)
        except OSError:  # another run finished first, or something else is in the way
            if not _complete(final):
                raise ValueError(f"--aux-data synthetic: {final} holds no complete set: remove it") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _complete(folder: Path) -> bool:
    """Whether ``folder`` holds a complete synthetic set (its meta.json says so)."""
    try:
        return bool(json.loads((folder / "meta.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def aux_problem(cfg, weight: float) -> str | None:
    """Why an auxiliary set cannot join a run of ``cfg`` with ``weight`` (None: it can)."""
    if cfg.mode != "wild" or cfg.part == "wholebody":
        return "--aux-data: an auxiliary MoCap set supervises wild-mode body, hand or face sets"
    if not weight > 0:
        return f"--aux-weight must be > 0, got {weight}"
    return None


def load_aux(data, cfg, samples: Sequence, weight: float | None = None, skip_bad: bool = False,
             allow_outside_root: bool = False) -> AuxMocap:  # fmt: skip
    """The auxiliary MoCap set at ``data`` for a wild-mode run of ``cfg`` on ``samples`` (checked), its
    losses weighted ``weight`` (None: the config's, ``aux_weight_resolved``)."""
    from neuralannot.data.loading import load_samples

    weight = cfg.aux_weight_resolved if weight is None else weight
    problem = aux_problem(cfg, weight)
    if problem:
        raise ValueError(problem)
    data = resolve_aux_data(data, cfg.part)
    aux, report = load_samples(data, cfg.part, skip_bad, needs_3d=True, images=cfg.uses_image, keep_gt=False,
                               allow_outside_root=allow_outside_root)  # fmt: skip
    check_aux_samples(aux, samples[0].part)
    log.info("auxiliary MoCap set %s: %d samples (%s)", data, len(aux), report)
    return AuxMocap(aux, weight, source=data)


def config_aux(cfg, samples: Sequence, skip_bad: bool = False,
               allow_outside_root: bool = False) -> AuxMocap | None:  # fmt: skip
    """The auxiliary set a run of ``cfg`` trains with (``cfg.aux_spec``: its ``aux_data`` or the part's
    default, weighted ``cfg.aux_weight_resolved``), loaded and checked for ``samples``; None where it trains
    with none."""
    spec = cfg.aux_spec
    if spec is None:
        if cfg.aux_weight is not None:
            log.warning("aux_weight %g ignored: this %s run trains with no auxiliary set", cfg.aux_weight,
                        cfg.part)  # fmt: skip
        return None
    return load_aux(spec, cfg, samples, skip_bad=skip_bad, allow_outside_root=allow_outside_root)


def check_aux_samples(samples: Sequence, main_part: str) -> None:
    """Refuse an auxiliary set that cannot supervise: empty, without 3D joints, or another part."""
    if not samples:
        raise ValueError("the auxiliary MoCap set has no samples")
    for s in samples:
        if s.joints_3d is None:
            raise ValueError(f"auxiliary MoCap sample {s.id!r} has no 3D joints")
        if s.part != main_part and {s.part, main_part} - {"lhand", "rhand", "hand"}:
            raise ValueError(f"auxiliary MoCap sample {s.id!r} is part {s.part!r}, the set is {main_part!r}")


def crop_frame_joints(samples: Sequence) -> Tensor:
    """(N, J, 4) float32: each sample's 3D joints turned from its camera into its crop's virtual
    camera frame (the ray through the crop centre becomes the optical axis); validity kept, invalid
    joints zero. Left hands: the mirrored crop's frame (x negated, as the crop dataset mirrors)."""
    out = []
    for s in samples:
        j = np.array(s.joints_3d, dtype=np.float64)
        if s.part == "lhand":
            j = hflip_joints_3d(j, s.joint_set)
        R = ray_rotation(torch.as_tensor(s.K, dtype=torch.float64), torch.from_numpy(crop_centre(s)))
        j[:, :3] = j[:, :3] @ R.numpy()  # R^T p per row
        j[j[:, 3] <= 0, :3] = 0.0
        out.append(torch.from_numpy(j.astype(np.float32)))
    return torch.stack(out)


#: fewest joints an auxiliary set must share with the main set for a network that reads the 2D joints
MIN_SHARED_JOINTS = 6


class _Override(Dataset):
    """``base``'s items with the 3D joints replaced (``joints_3d``: crop-frame targets, or None) and,
    with ``input_set``, the 2D joints the network reads converted from ``own_set`` into ``input_set``
    (the item's own kept as ``aux_joints_2d`` for the loss)."""

    def __init__(self, base: Dataset, joints_3d: Tensor | None, own_set: str, input_set: str | None):
        self.base, self.joints_3d = base, joints_3d
        self.own_set, self.input_set = own_set, input_set

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.base[index])
        if self.joints_3d is not None:
            item["joints_3d"] = self.joints_3d[index]
        if self.input_set is not None:
            own = item["aux_joints_2d"] = item["joints_2d"]
            item["joints_2d"] = convert_joints(own, self.own_set, self.input_set)[0]
        return item


class AuxMocap:
    """An auxiliary MoCap set for a wild-mode network: its dataset, batches and loss."""

    def __init__(self, samples: Sequence, weight: float = 1.0, source: Path | None = None):
        if not samples:
            raise ValueError("the auxiliary MoCap set has no samples")
        joint_sets = {s.joint_set for s in samples}
        if len(joint_sets) != 1:
            raise ValueError(f"the auxiliary MoCap set mixes joint sets {sorted(joint_sets)}")
        self.samples, self.weight = list(samples), float(weight)
        self.joint_set = joint_sets.pop()
        self.dataset: Dataset | None = None
        self.source = source  # the folder it was read from, where known

    def digest(self, images: bool) -> str:
        return f"aux{self.weight:g}:{samples_digest(self.samples, images)}"

    def summary(self) -> dict:
        """What a run records of the set it trained with: its folder, size and weight."""
        data = None if self.source is None else str(self.source)
        return {"data": data, "samples": len(self.samples), "weight": self.weight}

    def run_tag(self, images: bool) -> str:
        """The prefix of a run folder trained with this set (``aux<8 hex>-``)."""
        return f"aux{short_digest(self.digest(images))}-"

    def prepare(self, model, base: Dataset) -> None:
        """Take ``base``, this set's dataset built by the model's own pipeline
        (``training.make_dataset``: frozen features computed once), with the 3D joints in the crop frame
        where the network predicts in it."""
        cfg = model.cfg
        reads_joints = any(m is not None for m in (model.joint_encoder, model.end_crops, model.joint_sampler))
        input_set = None
        if self.joint_set != model.joint_set and (reads_joints or cfg.wild_heatmaps):
            if cfg.wild_heatmaps:
                raise ValueError(f"the network reads the 2D joints as heatmaps ({model.joint_set}): the "
                                 f"auxiliary set must have the same joint set, it has {self.joint_set} "
                                 f"(joint_input: coordinates reads other sets' shared joints)")  # fmt: skip
            shared = sum(conversion_indices(self.joint_set, model.joint_set)[1])
            if shared < MIN_SHARED_JOINTS:
                raise ValueError(f"the network reads the 2D joints ({model.joint_set}): the auxiliary "
                                 f"set's {self.joint_set} shares {shared} of them, fewer than "
                                 f"{MIN_SHARED_JOINTS}")  # fmt: skip
            log.info("auxiliary set: its %s joints read as %d of the network's %s", self.joint_set, shared,
                     model.joint_set)  # fmt: skip
            input_set = model.joint_set
        if len(base) != len(self.samples):
            raise ValueError(f"auxiliary dataset of {len(base)} items for {len(self.samples)} samples")
        joints_3d = crop_frame_joints(self.samples) if cfg.crop_frame else None
        if joints_3d is None and input_set is None:
            self.dataset = base
        else:
            self.dataset = _Override(base, joints_3d, self.joint_set, input_set)

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> dict:
        """The auxiliary batch of global step ``step`` (deterministic, independent of resumes); under
        torchrun ``batch_size`` is the global batch and rank ``rank`` of ``world`` takes every
        ``world``-th of its samples, so the ranks together draw the single-process batch."""
        n = len(self.dataset)
        if n < world:
            raise ValueError(f"the auxiliary MoCap set has {n} samples, fewer than the {world} ranks")
        g = torch.Generator().manual_seed(seed * 1_000_003 + step + 7)
        idx = torch.randperm(n, generator=g)[: min(batch_size, n)].tolist()
        return default_collate([self.dataset[i] for i in idx[rank::world]])

    def losses(self, model, batch: dict[str, Tensor], pred: dict[str, Tensor]) -> dict[str, Tensor]:
        """``aux_joints3d`` (Eq. 1's L1 after the best translation) and ``aux_joints2d`` (Eq. 2 with the
        best root hypothesis), each weighted like the model's own terms times ``weight``."""
        cfg = model.cfg
        if "aux_joints_2d" in batch:  # the network read them converted into its own set
            batch = {**batch, "joints_2d": batch["aux_joints_2d"]}
        kp = untranslated_keypoints(model.body, get_regressor(model.body, self.joint_set), pred)
        kp, err2d = model.pick_root_hypothesis(batch, dict(pred), kp)
        valid2 = batch["joints_2d"][..., 2] > 0
        gt = batch["joints_3d"]
        valid3 = gt[..., 3] > 0
        t = translation_fit(kp.detach(), gt[..., :3], valid3)
        err3 = (kp + t[:, None] - gt[..., :3]).abs().sum(-1)
        return {
            "aux_joints3d": self.weight * cfg.w_joints3d * _masked_mean(err3, valid3),
            "aux_joints2d": self.weight * cfg.w_joints2d * _masked_mean(err2d, valid2),
        }
