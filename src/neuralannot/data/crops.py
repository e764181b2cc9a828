"""Network inputs: crop each sample by its GT box, flip left hands to right, and move targets with it.

Every item is a dict of tensors (collatable): the crop image (uint8 ``(3, S, S)``: the float
conversion and normalisation run batched on the device, in ``Backbone.normalize``), 2D joints in crop
pixels, camera-frame 3D joints, optional joint heatmaps, the crop affine and the virtual camera of the
crop. The crops come from a disk cache (``data/crop_cache.py``) when one is given. The virtual
camera has a fixed focal length (``virtual_focal`` px for a 256-px crop, scaled with the input size)
and the principal point at the crop centre, as in the NeuralAnnot release.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from neuralannot.data.crop_cache import flips, open_crops, render_crop, sample_affine
from neuralannot.data.sample import Sample, SampleError
from neuralannot.data.transforms import (
    apply_affine_2d,
    hflip,
    hflip_intrinsics,
    hflip_joints_3d,
    intrinsics_matrix,
    joints_to_heatmaps,
    load_image,
    update_intrinsics_for_affine,
)

log = logging.getLogger(__name__)


def virtual_intrinsics(input_size: int, virtual_focal: float) -> np.ndarray:
    """(3, 3) intrinsics of the virtual crop camera."""
    f, c = virtual_focal * input_size / 256.0, input_size / 2.0
    return intrinsics_matrix((f, f), (c, c))


def drop_unreadable_images(samples: list[Sample], report=None) -> list[Sample]:
    """The samples whose image decodes; the others are counted in ``report`` (a ``SkipReport``).

    For ``--skip-bad`` runs with image input: each image is decoded once up front, so a missing,
    corrupt or truncated file is skipped before training or annotation instead of stopping it.
    """
    kept = []
    for s in samples:
        try:
            if s.image is None:
                raise SampleError("image-based input but the sample has no image", s.id, kind="image")
            load_image(s.image, s.id, s.image_size)
        except SampleError as err:
            if report is not None:
                report.skip(err.kind, str(err))
            log.debug("skipping %s", err)
            continue
        kept.append(s)
    return kept


class CropDataset(Dataset):
    """Map-style dataset over in-memory :class:`Sample` records (images are read lazily).

    Args:
        samples: the annotation set (joints and boxes only; a few hundred bytes per sample).
        input_size: side of the square crop in pixels.
        load_images: False for joint-only inputs (the image is then never read).
        cache_images: without ``crop_cache``, keep decoded crops in memory across epochs (default:
            when they fit in 2 GB; with DataLoader workers each worker keeps its own cache).
        crop_cache: a crop cache file of exactly these samples and ``input_size``
            (:func:`~neuralannot.data.crop_cache.ensure_crop_cache`), memory-mapped read-only by
            each process that reads items.
        heatmaps: also return (J, hm, hm) Gaussian heatmaps of the 2D joints.
        camera: the crop camera ``K`` of each item: ``virtual`` (a fixed focal ``virtual_focal`` at
            the crop centre, as Hand4Whole) or ``intrinsics`` (the sample's own camera through the
            crop, as CLIFF; samples without intrinsics get the virtual one).
    """

    def __init__(
        self,
        samples: list[Sample],
        input_size: int = 256,
        load_images: bool = True,
        heatmaps: bool = False,
        heatmap_size: int = 64,
        heatmap_sigma: float = 2.0,
        virtual_focal: float = 5000.0,
        cache_images: bool | None = None,
        camera: str = "virtual",
        crop_cache: str | os.PathLike | None = None,
    ):
        if camera not in ("virtual", "intrinsics"):
            raise ValueError(f"camera must be virtual | intrinsics, got {camera!r}")
        self.camera = camera
        self.samples = samples
        self.size = int(input_size)
        self.load_images = load_images
        self.heatmaps = heatmaps
        self.heatmap_size, self.heatmap_sigma = heatmap_size, heatmap_sigma
        self.K = virtual_intrinsics(self.size, virtual_focal)
        self.crop_cache = crop_cache if load_images else None
        self._mmap: np.ndarray | None = None  # opened lazily, once per process (not pickled)
        if cache_images is None:  # keep decoded crops in memory when they take < 2 GB
            cache_images = len(samples) * self.size**2 * 3 < 2 << 30
        self._crops: dict[int, np.ndarray] | None = {} if cache_images and crop_cache is None else None
        sets = {s.joint_set for s in samples}
        if len(sets) > 1:
            raise SampleError(f"all samples of a set must share one joint set, found {sorted(sets)}")

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mmap": None}

    def crop(self, index: int) -> np.ndarray:
        """The (mirrored for left hands) crop of sample ``index``: uint8 ``(S, S, 3)``."""
        if self.crop_cache is not None:
            if self._mmap is None:
                self._mmap = open_crops(self.crop_cache)
            return np.array(self._mmap[index])
        image = self._crops.get(index) if self._crops is not None else None
        if image is None:
            image = render_crop(self.samples[index], self.size)
            if self._crops is not None:
                self._crops[index] = image
        return image

    def _crop_camera(self, s: Sample, A: np.ndarray, flip: bool) -> np.ndarray:
        if self.camera == "virtual" or s.intrinsics is None:
            return self.K
        K = update_intrinsics_for_affine(s.K, A)
        return hflip_intrinsics(K, self.size) if flip else K

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.samples[index]
        S = self.size
        A = sample_affine(s, S)
        flip = flips(s)
        j2d = np.array(s.joints_2d, dtype=np.float32)
        j2d[:, :2] = apply_affine_2d(j2d[:, :2], A)
        j2d[j2d[:, 2] <= 0, :2] = 0.0
        if flip:
            _, j2d = hflip(None, j2d, s.joint_set, image_width=S)
        item = {
            "index": torch.tensor(index),
            "joints_2d": torch.from_numpy(j2d),
            "affine": torch.from_numpy(A.astype(np.float32)),
            "flip": torch.tensor(flip),
            "K": torch.from_numpy(self._crop_camera(s, A, flip).astype(np.float32)),
        }
        if s.joints_3d is not None:
            j3d = np.array(s.joints_3d, dtype=np.float32)
            j3d[j3d[:, 3] <= 0, :3] = 0.0
            item["joints_3d"] = torch.from_numpy(hflip_joints_3d(j3d, s.joint_set) if flip else j3d)
        else:
            item["joints_3d"] = torch.zeros(len(j2d), 4)
        if self.load_images:
            item["image"] = torch.from_numpy(self.crop(index)).permute(2, 0, 1)
        if self.heatmaps:
            hm = joints_to_heatmaps(j2d, (self.heatmap_size,) * 2, self.heatmap_sigma, input_size=(S, S))
            item["heatmaps"] = torch.from_numpy(hm)
        return item
