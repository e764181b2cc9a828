"""Whole-body NeuralAnnot (paper Sec. 3.3): body, hand and face annotators on their crops, integrated.

Each ``coco_wholebody133`` sample is split into part samples (:mod:`neuralannot.data.part_samples`); a
body annotator is trained on and annotates the body samples (``coco23``), a hand annotator all hand
crops (left hands flipped to right, as the hand path does), a face annotator the face crops. The part
results are integrated per sample into the whole-body model (:func:`neuralannot.bodies.integrate.integrate`):
body pose, shape, global rotation, translation and camera from the body annotator, finger rotations
and the wrists from the hand annotator, the facial actions (jaw via ``jawOpen``) from the face one.
A part without a record (too few keypoints, flagged by the dataset) keeps the body's values and is
left out of the record (``lhand_valid`` / ``rhand_valid`` / ``face_valid`` false in the release layout).

With ``--body-model smplx`` the parts run on SMPL-X, MANO and FLAME (the user's files) and integrate
into SMPL-X (its release layout: ``smplx_param`` with the ``*_valid`` flags). The head's rotation
comes from the face annotator where the face is valid (``wholebody_head: face``; ``body`` keeps the
paper's, the body annotator's).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import roma
import torch

from neuralannot.annotators.config import ROOT_HYPOTHESES, AnnotatorConfig, default_outputs
from neuralannot.data.fingerprint import FINGERPRINT_KEY, samples_fingerprint
from neuralannot.geometry import ray_rotation
from neuralannot.io.pseudo_gt import PseudoGT, write_pseudo_gt

__all__ = ["part_configs", "run_wholebody"]

log = logging.getLogger(__name__)

#: The part annotators and the samples each one sees.
PART_RUNS = (("body", ("body",)), ("hand", ("lhand", "rhand")), ("face", ("face",)))
#: The whole-body groups each part gives (left out of a record when the part is missing).
_GROUP_FLAG = {"lhand_pose": "lhand_valid", "rhand_pose": "rhand_valid", "expression": "face_valid",
               "jaw_pose": "face_valid", "expr": "face_valid", "leye_pose": "face_valid",
               "reye_pose": "face_valid"}  # fmt: skip
#: Per whole-body model, the model of each part annotator: Anny's own part models, or SMPL-X with MANO
#: hands and a FLAME face (the user's files, found as ``load_body_model`` finds them).
PART_MODELS = {"anny": {"body": "anny", "hand": "anny", "face": "anny"},
               "smplx": {"body": "smplx", "hand": "mano", "face": "flame"}}  # fmt: skip
#: Per whole-body model, the part-record groups integration reads: the body's, the face's, and those
#: that give the face's head rotation (Anny: its head bone; FLAME: ``root_pose · neck_pose``).
_KEYS = {
    "anny": {"body": ("root_pose", "body_pose", "phenotype", "trans"), "face": ("expression",),
             "head": ("root_pose", "head_pose", "phenotype", "expression")},
    "smplx": {"body": ("root_pose", "body_pose", "shape", "trans"), "face": ("jaw_pose", "expr"),
              "head": ("root_pose", "neck_pose")},
}  # fmt: skip


def part_configs(cfg: AnnotatorConfig) -> dict[str, AnnotatorConfig]:
    """The body / hand / face annotator configs derived from the whole-body one. Outputs left at the
    whole-body default take each part's default (hands: the PCA embedding), and so do root hypotheses
    (hands: 2), inputs (hands: their 2D joints as coordinates) and the output camera (faces: the
    crop's); the face always runs with
    rotation outputs: the head model has no pose embedding (its pose is one head rotation). Each part
    runs on its model of :data:`PART_MODELS` (SMPL-X: MANO hands, a FLAME face)."""
    given = cfg.outputs != default_outputs(cfg.mode, cfg.part)
    hyp_given = cfg.root_hypotheses != ROOT_HYPOTHESES.get(cfg.part, 1)
    # fields left at the whole-body default take each part's (None: resolved per part)
    own = AnnotatorConfig(mode=cfg.mode, part=cfg.part)
    per_part = {k: getattr(cfg, k) if getattr(cfg, k) != getattr(own, k) else None
                for k in ("inputs", "joint_input", "output_camera")}  # fmt: skip
    models = PART_MODELS.get(cfg.body_model, {p: cfg.body_model for p, _ in PART_RUNS})
    out = {p: replace(cfg, part=p, outputs=cfg.outputs if given else default_outputs(cfg.mode, p),
                      root_hypotheses=cfg.root_hypotheses if hyp_given else None, body_model=models[p],
                      **per_part)
           for p, _ in PART_RUNS}  # fmt: skip
    # the face-size stage is measured on face sets only; the integration takes the body's shape anyway
    out["face"] = replace(out["face"], outputs="rotations", face_stage=False)
    # a given auxiliary weight goes to the parts that train with a set
    out = {p: c if c.aux_spec is not None else replace(c, aux_weight=None) for p, c in out.items()}
    return out


def _stack(records: list[PseudoGT | None], keys: tuple[str, ...]) -> tuple[dict, torch.Tensor]:
    """Part records (None = missing; at least one given) → batched tensors of ``keys`` (zeros where
    missing) and the (B,) mask of the given ones."""
    valid = torch.tensor([r is not None for r in records])
    return {k: _column(records, k) for k in keys}, valid


def _column(records: list[PseudoGT | None], key: str, optional: bool = False) -> torch.Tensor:
    """(B, ...) of group ``key``, zeros where a record is missing. ``optional``: also zeros where a
    record lacks the group (FLAME's optional ``neck_pose``), and a rotation (3,) where none has it."""
    def has(r):
        return r is not None and (not optional or key in r.params)

    shape = next((r.params[key].shape for r in records if has(r)), (3,))
    rows = [r.params[key] if has(r) else np.zeros(shape, np.float32) for r in records]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def _in_body_frame(part: PseudoGT | None, body: PseudoGT, sample) -> PseudoGT | None:
    """The hand or face record with its global rotation moved from its own camera's frame to the body
    record's: each crop camera looks along the real ray through its crop centre (its principal point),
    so the part's rotation is turned by ``ray(body)ᵀ · ray(part)`` in the sample's intrinsics.
    Unchanged without intrinsics or cameras (the two frames are then taken as one)."""
    if part is None or sample.intrinsics is None or part.camera is None or body.camera is None:
        return part
    K = torch.as_tensor(np.asarray(sample.K, np.float64))
    centres = torch.tensor([body.camera["princpt"], part.camera["princpt"]], dtype=torch.float64)
    rb, rh = ray_rotation(K, centres)
    root = roma.rotvec_to_rotmat(torch.as_tensor(np.asarray(part.params["root_pose"], np.float64)))
    turned = roma.rotmat_to_rotvec(rb.T @ rh @ root).numpy().astype(np.float32)
    return replace(part, params={**part.params, "root_pose": turned})


def _head_rotation(kind: str, face: dict, valid: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) global head rotation of the stacked face records (the identity where invalid): the
    Anny head part model's head bone, or FLAME's ``R(root_pose) · R(neck_pose)``."""
    from neuralannot.bodies import get_body_model
    from neuralannot.bodies.integrate import anny_head_rotation

    if kind == "smplx":
        R = roma.rotvec_to_rotmat(face["root_pose"]) @ roma.rotvec_to_rotmat(face["neck_pose"])
        return torch.where(valid[:, None, None], R, torch.eye(3))
    head = get_body_model("anny", "face")
    params = {k: v for k, v in face.items() if k in head.param_specs}
    R = torch.eye(3).expand(len(valid), 3, 3).clone()
    if valid.any():
        rows = {k: v[valid] for k, v in params.items()}
        rows["trans"] = torch.zeros(int(valid.sum()), 3)  # a rotation: the translation plays no part
        with torch.no_grad():
            R[valid] = anny_head_rotation(head, rows).to(R)
    return R


def integrate_records(
    samples, splits, part_records: dict[str, dict[str, PseudoGT]], body, head_from: str = "face"
) -> list[PseudoGT]:
    """One whole-body record per sample from the body / hand / face part records (by part-sample id),
    for ``body`` the Anny whole body (Anny part records) or SMPL-X (SMPL-X, MANO and FLAME records).
    ``head_from``: ``"face"`` turns the body's head to the face annotator's head rotation where the
    face is valid; ``"body"`` keeps the body annotator's (the paper)."""
    if head_from not in ("face", "body"):
        raise ValueError(f"head_from must be face | body, got {head_from!r}")
    kind = "smplx" if body.name == "smplx" else "anny"
    keys = _KEYS[kind]
    from neuralannot.bodies.integrate import integrate

    def rec(part, sp):
        ps = sp.get(part)
        return None if ps is None else part_records[part].get(ps.id)

    body_recs = [rec("body", sp) for sp in splits]
    missing = [s.id for s, r in zip(samples, body_recs, strict=True) if r is None]
    if missing:
        raise ValueError(f"whole body: no body annotation for samples {missing[:5]}")
    bp = {k: torch.from_numpy(np.stack([r.params[k] for r in body_recs])) for k in keys["body"]}
    parts, recs_of = {}, {}
    for part, groups in (("lhand", ("root_pose", "hand_pose")), ("rhand", ("root_pose", "hand_pose")),
                         ("face", keys["face"])):  # fmt: skip
        recs = [rec(part, sp) for sp in splits]
        recs_of[part] = [_in_body_frame(r, b, s) for r, b, s in zip(recs, body_recs, samples, strict=True)]
        given = any(r is not None for r in recs_of[part])
        parts[part] = _stack(recs_of[part], groups) if given else (None, None)
    face, face_valid = parts["face"]
    if face is not None and head_from == "face":
        head = {k: _column(recs_of["face"], k, optional=True) for k in keys["head"]}
        face = {**face, "head_rotation": _head_rotation(kind, head, face_valid)}
    with torch.no_grad():
        params, valid = integrate(
            body, bp, parts["lhand"][0], parts["rhand"][0], face,
            lhand_valid=parts["lhand"][1], rhand_valid=parts["rhand"][1], face_valid=face_valid,
        )  # fmt: skip
    out = []
    for i, (s, sp) in enumerate(zip(samples, splits, strict=True)):
        ok = {k: bool(v[i]) for k, v in valid.items()}
        p = {k: v[i].numpy().astype(np.float32) for k, v in params.items()
             if k != "local_changes" and ok.get(_GROUP_FLAG.get(k, ""), True)}  # fmt: skip
        b = body_recs[i]
        method = b.quality.get("method", "neuralannot").replace("neuralannot", "neuralannot-wholebody")
        quality = {"method": method,
                   "confidence": b.quality.get("confidence"), **ok, "parts": {}}  # fmt: skip
        if quality["confidence"] is None:
            quality.pop("confidence")
        for part in ("body", "lhand", "rhand", "face"):
            r = rec(part, sp)
            if r is not None:
                keep = ("joint_err_px", "joint_err_mm", "confidence")
                quality["parts"][part] = {k: r.quality[k] for k in keep if k in r.quality}
        out.append(PseudoGT(s.id, body.name, "wholebody", p, b.camera, quality))
    return out


def run_wholebody(
    samples,
    out: str | Path,
    cfg: AnnotatorConfig,
    work_dir: str | Path,
    device: str = "cpu",
    progress: bool = True,
    meta: dict | None = None,
    skip_bad: bool = False,
) -> dict:
    """Annotate whole-body ``samples`` with the body, hand and face annotators and write one integrated
    Anny whole-body record per sample to ``out``; returns a summary. ``skip_bad``: samples with a bad
    part box (zero size, outside the image) are left out and counted instead of stopping the run."""
    from neuralannot.annotators.two_stage import train_and_annotate
    from neuralannot.bodies import get_body_model
    from neuralannot.bodies.integrate import VALID_KEYS
    from neuralannot.data.part_samples import split_samples

    if cfg.body_model not in PART_MODELS:
        raise ValueError(
            f"--part wholebody integrates Anny's part models (--body-model anny) or SMPL-X's, MANO's and "
            f"FLAME's (--body-model smplx, the user's files); --body-model {cfg.body_model} is not supported"
        )
    if cfg.mode != "wild":
        raise ValueError("--part wholebody needs --mode wild (whole-body sets carry 2D keypoints)")
    bad = [s.id for s in samples if s.joint_set != "coco_wholebody133"]
    if bad:
        raise ValueError(f"--part wholebody needs coco_wholebody133 samples; samples {bad[:5]} are not")
    splits, by_part = split_samples(samples, skip_bad=skip_bad)
    skipped = len(samples) - len(splits)
    samples = [sp.sample for sp in splits]
    if not samples:
        raise ValueError("--part wholebody: every sample has a bad part box (see the log)")
    cfgs = part_configs(cfg)
    part_records: dict[str, dict[str, PseudoGT]] = {p: {} for p in ("body", "lhand", "rhand", "face")}
    runs = {}
    for name, parts in PART_RUNS:
        part_samples = [x for p in parts for x in by_part[p]]
        if not part_samples:
            log.info("whole body: no %s samples", name)
            continue
        log.info("whole body: %s annotator on %d samples", name, len(part_samples))
        recs, info = train_and_annotate(cfgs[name], part_samples, work_dir, device=device, progress=progress,
                                        tag=f"wb-{name}-")  # fmt: skip
        runs[name] = {"samples": len(part_samples), "train": info["train"], "run_dir": info["run_dir"]}
        for r in recs:
            part_records[r.sample_id.rsplit("/", 1)[1]][r.sample_id] = r
    body = get_body_model(cfg.body_model, "wholebody")
    records = integrate_records(samples, splits, part_records, body, head_from=cfg.wholebody_head)
    meta = {"method": "neuralannot-wholebody", "config": cfg.to_dict(),
            FINGERPRINT_KEY: samples_fingerprint(samples), **(meta or {})}  # fmt: skip
    write_pseudo_gt(out, records, meta)
    counts = {k: sum(bool(r.quality[k]) for r in records) for k in VALID_KEYS}
    return {
        "samples": len(records),
        "parts": runs,
        "valid": counts,
        "out": str(out),
        "skipped_bad_part_box": skipped,
    }
