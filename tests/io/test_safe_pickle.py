"""Hostile pickles against every loader: nothing a file names may run (proof-of-attack markers).

Each payload from :mod:`hostile_pickles` creates a marker file when loaded with plain pickle (checked
first, so the suite tests real attacks). Every loader of the project that reads a pickle-capable
format -- dataset ``.pkl``, HumanData / pseudo-GT ``.npz`` (``--pred``, ``--init``), checkpoints,
backbone and VPoser weights, SMPL-family model files and FLAME embeddings -- must refuse each one
with its usual one-line error type, and the marker must never appear.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import hostile_pickles as hp
import smplx_fixtures as fx
from neuralannot.io.safe_pickle import UnsafePickleError, load_npy, load_npz, safe_load, safe_loads

PAYLOADS = sorted(hp.payloads(Path("/nonexistent/marker")))


def _payload(name: str, marker: Path) -> bytes:
    return hp.payloads(marker)[name]


@pytest.mark.parametrize("name", PAYLOADS)
def test_payloads_run_code_with_plain_pickle(tmp_path, name):
    marker = tmp_path / "pwned"
    try:
        pickle.loads(_payload(name, marker))
    except Exception:  # noqa: BLE001 - some payloads fail after running their code
        pass
    assert hp.fired(marker, wait_s=5.0), f"{name} is not a working attack"


# -- the loaders: (tmp folder, payload) -> callable that loads it; expected exception --------------
def _file(d: Path, name: str, data: bytes) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _dataset_pkl(d, pl):
    from neuralannot.data.adapters import DatasetFormatError, SkipReport, load_any

    p = _file(d, "sequenceFiles/test/evil.pkl", pl)
    return lambda: list(load_any(p, report=SkipReport())), DatasetFormatError


def _humandata(d, pl):
    from neuralannot.io.export import read_any
    from neuralannot.io.pseudo_gt import PseudoGTError

    p = hp.write_npz(d / "hd.npz", {"__data_len__": np.array(1), "smpl": pl})
    return lambda: read_any(p), PseudoGTError


def _pseudo_gt_npz(d, pl):  # `--pred` / `--init` of eval, report, fit
    from neuralannot.io.pseudo_gt import PseudoGTError, read_pseudo_gt

    p = hp.write_npz(d / "pgt.npz", {"ids": np.array(["a"]), "model": pl})
    return lambda: read_pseudo_gt(p), PseudoGTError


def _checkpoint_raw(d, pl):
    from neuralannot.io.checkpoint import CheckpointError, read_checkpoint

    return lambda: read_checkpoint(_file(d, "raw.pt", pl)), CheckpointError


def _checkpoint_zip(d, pl):
    from neuralannot.annotators.training import load_trained
    from neuralannot.io.checkpoint import CheckpointError

    p = hp.write_torch_zip(d / "checkpoint.pt", pl)
    return lambda: load_trained(None, p), CheckpointError  # the file is read before the model is used


def _backbone(d, pl):
    from neuralannot.models.backbone import read_state_dict

    return lambda: read_state_dict(hp.write_torch_zip(d / "bb.pth", pl)), ValueError


def _vposer(d, pl):
    from neuralannot.bodies.embedding import EmbeddingError, load_vposer_checkpoint

    return lambda: load_vposer_checkpoint(hp.write_torch_zip(d / "vposer.ckpt", pl)), EmbeddingError


def _model(t: str, build):
    def make(d, pl):
        from neuralannot.bodies.base import ModelFileError
        from neuralannot.bodies.smplx_family import load_smplx_family

        path, kw = build(d, pl)
        return lambda: load_smplx_family(t, path, **kw), ModelFileError

    return make


def _smplx_npz(d, pl):
    _, arrays = fx.write_smplx(d / "ref")
    return hp.write_npz(d / "SMPLX_NEUTRAL.npz", {**arrays, "joint2num": pl}), {}


def _flame_static(d, pl):
    path, _ = fx.write_flame(d, embedding=False)
    _file(d, "flame_static_embedding.pkl", pl)
    return path, {}


def _flame_dynamic(d, pl):
    path, _ = fx.write_flame(d)
    _file(d, "flame_dynamic_embedding.npy", hp.as_npy(pl))
    return path, {"use_face_contour": True}


def _flame_deca(d, pl):
    path, _ = fx.write_flame(d, embedding=False)
    _file(d, "landmark_embedding.npy", hp.as_npy(pl))
    return path, {}


LOADERS = {
    "dataset .pkl (3DPW)": _dataset_pkl,
    "HumanData npz (export/eval --pred)": _humandata,
    "pseudo-GT npz (--pred, --init)": _pseudo_gt_npz,
    "checkpoint, raw pickle": _checkpoint_raw,
    "checkpoint, torch zip (load_trained)": _checkpoint_zip,
    "backbone weights": _backbone,
    "VPoser checkpoint": _vposer,
    "SMPL .pkl": _model("smpl", lambda d, pl: (_file(d, "SMPL_NEUTRAL.pkl", pl), {})),
    "MANO .pkl": _model("mano", lambda d, pl: (_file(d, "MANO_RIGHT.pkl", pl), {})),
    "FLAME .pkl": _model("flame", lambda d, pl: (_file(d, "generic_model.pkl", pl), {})),
    "SMPL-X .npz member": _model("smplx", _smplx_npz),
    "FLAME static embedding": _model("flame", _flame_static),
    "FLAME dynamic embedding": _model("flame", _flame_dynamic),
    "DECA embedding": _model("flame", _flame_deca),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("name", PAYLOADS)
def test_every_loader_refuses_every_payload(tmp_path, loader, name):
    marker = tmp_path / "pwned"
    load, error = LOADERS[loader](tmp_path / "files", _payload(name, marker))
    with pytest.raises(error) as err:
        load()
    assert "\n" not in str(err.value).strip() or loader.startswith("dataset")
    assert not hp.fired(marker, wait_s=0.3 if "Popen" in name else 0.0), f"{loader} ran {name}"


# -- the restricted reader itself -------------------------------------------------------------------
def test_dotted_names_are_refused_even_below_allowed_globals():
    for module, name in [("numpy", "dtype.__class__"), ("numpy", "ndarray.__init__"),
                         ("numpy.dtypes", "StrDType"), ("numpy._core.multiarray", "_reconstruct.__self__")]:
        data = b"\x80\x04" + hp._unicode(module) + hp._unicode(name) + b"\x93."
        with pytest.raises(UnsafePickleError, match=re.escape(f"{module}.{name}")):
            safe_loads(data)


def test_numpy_data_round_trips_in_every_protocol(tmp_path):
    value = {"a": np.arange(6.0).reshape(2, 3), "s": np.array(["x", "yy"]), "f": np.float32(1.5),
             "o": [np.array([1, 2], np.uint8), "txt", 3, None, (1.0, b"raw")]}
    for protocol in range(6):
        out = safe_loads(pickle.dumps(value, protocol=protocol))
        np.testing.assert_array_equal(out["a"], value["a"])
        assert out["s"].tolist() == ["x", "yy"] and out["f"] == np.float32(1.5)
        assert out["o"][1:] == value["o"][1:]
    np.save(tmp_path / "d.npy", np.array({"k": np.ones(2)}, dtype=object), allow_pickle=True)
    assert load_npy(tmp_path / "d.npy")["k"].tolist() == [1.0, 1.0]
    np.savez(tmp_path / "z.npz", plain=np.zeros(2), obj=np.array({"k": 1}, dtype=object))
    z = load_npz(tmp_path / "z.npz")
    assert z["obj"] == {"k": 1} and z["plain"].tolist() == [0.0, 0.0]
    assert safe_load(_file(tmp_path, "p.pkl", pickle.dumps(value, protocol=2)))["o"][2] == 3


def test_codecs_encode_is_latin1_only():
    data = (b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01"
            b"X\x04\x00\x00\x00zlibq\x02\x86q\x03Rq\x04.")
    with pytest.raises(UnsafePickleError, match="encoding 'zlib'"):
        safe_loads(data)


# -- through the command line: exit 2, one line, nothing runs ----------------------------------------
def _cli(*args) -> tuple[int, str]:
    from neuralannot.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


@pytest.mark.parametrize("name", ["dotted-numpy.dtypes-p4", "os.system-p2", "eval-p4"])
def test_cli_refuses_hostile_files_with_one_line(tmp_path, name):
    marker = tmp_path / "pwned"
    pl = _payload(name, marker)
    hd = hp.write_npz(tmp_path / "hd.npz", {"__data_len__": np.array(1), "smpl": pl})
    ckpt = hp.write_torch_zip(tmp_path / "checkpoint.pt", pl)
    model = _file(tmp_path / "models", "SMPL_NEUTRAL.pkl", pl)
    nodata = tmp_path / "no-data"
    runs = {
        "export --pred": (["export", "--pred", hd, "--to", "json", "--out", tmp_path / "o.json"], "hd.npz"),
        "eval --pred": (["eval", "--pred", hd, "--data", nodata], "hd.npz"),
        "predict --checkpoint": (["predict", "--data", nodata, "--checkpoint", ckpt,
                                  "--out", tmp_path / "o.npz"], "checkpoint.pt"),
        "fit --method eft --checkpoint": (["fit", "--method", "eft", "--data", nodata, "--checkpoint", ckpt,
                                           "--out", tmp_path / "o.npz"], "checkpoint.pt"),
        "models PATH": (["models", model], "SMPL_NEUTRAL.pkl"),
    }
    for what, (args, file) in runs.items():
        code, out = _cli(*args)
        errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
        assert code == 2 and len(errors) == 1 and file in errors[0], (what, out)
    assert not marker.exists()
