"""Crafted pickles that run code when loaded with plain ``pickle``: each one creates a marker file.

:func:`payloads` gives ``name → bytes`` for protocols 0/2/4/5 and several routes to code:
``os.system``, ``subprocess.Popen``, ``builtins.eval``/``exec`` through ``__reduce__``; the same
inside a dict of numpy arrays and inside a numpy object array; and protocol-4 *dotted* names that
start in an innocent module (``numpy.dtypes``, ``numpy``) and walk to ``builtins.eval``
(``numpy.dtypes.__builtins__.get('eval')``). ``test_safe_pickle`` first proves with plain pickle that
every payload does create its marker, so a loader that refuses them all closes a real hole.

The ``as_*`` helpers wrap a payload the way each file format carries a pickle: a raw ``.pkl``, an
object ``.npy``, an ``.npz`` member (HumanData's dicts, model files), a torch checkpoint.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np


class _Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _unicode(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE


def dotted_eval(marker: Path, module: str = "numpy.dtypes") -> bytes:
    """Protocol 4: STACK_GLOBAL ``module`` + ``__builtins__.get`` → ``get('eval')(code)``."""
    out = b"\x80\x04"  # PROTO 4 (no FRAME: optional)
    out += _unicode(module) + _unicode("__builtins__.get") + b"\x93"  # STACK_GLOBAL
    out += _unicode("eval") + b"\x85R"  # TUPLE1, REDUCE -> eval
    out += _unicode(_code(marker)) + b"\x85R"  # eval(code)
    return out + b"."


def payloads(marker: Path) -> dict[str, bytes]:
    """Crafted pickles; loading any of them with plain pickle creates ``marker``."""
    m = str(marker)
    out: dict[str, bytes] = {}
    for p in (0, 2, 4, 5):
        out[f"os.system-p{p}"] = pickle.dumps(_Call(os.system, f"touch {m}"), protocol=p)
        out[f"eval-p{p}"] = pickle.dumps(_Call(eval, _code(marker)), protocol=p)
    out["exec-p2"] = pickle.dumps(_Call(exec, _code(marker)), protocol=2)
    out["subprocess.Popen-p2"] = pickle.dumps(_Call(subprocess.Popen, ["touch", m]), protocol=2)
    out["subprocess.Popen-p4"] = pickle.dumps(_Call(subprocess.Popen, ["touch", m]), protocol=4)
    out["in-dict-of-arrays-p3"] = pickle.dumps(
        {"global_orient": np.zeros((1, 3)), "x": _Call(os.system, f"touch {m}")}, protocol=3)
    out["in-object-array-p3"] = pickle.dumps(np.array([_Call(eval, _code(marker))], dtype=object), protocol=3)
    out["dotted-numpy.dtypes-p4"] = dotted_eval(marker, "numpy.dtypes")
    out["dotted-numpy-p4"] = dotted_eval(marker, "numpy")
    return out


def as_npy(payload: bytes) -> bytes:
    """An object-dtype ``.npy`` whose pickled body is ``payload`` (what ``np.save(dict)`` writes)."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
    return f.getvalue() + payload


def write_npz(path: Path, members: dict[str, np.ndarray | bytes]) -> Path:
    """An ``.npz``: arrays saved normally, ``bytes`` values stored as crafted object ``.npy`` members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in members.items():
            if isinstance(value, bytes):
                zf.writestr(f"{key}.npy", as_npy(value))
            else:
                f = io.BytesIO()
                np.save(f, value, allow_pickle=False)
                zf.writestr(f"{key}.npy", f.getvalue())
    return path


def write_torch_zip(path: Path, payload: bytes) -> Path:
    """A torch zip checkpoint whose ``data.pkl`` is ``payload``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return path


def fired(marker: Path, wait_s: float = 0.0) -> bool:
    """Whether the marker exists (optionally polling: ``Popen`` runs its command asynchronously)."""
    import time

    end = time.monotonic() + wait_s
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.05)
    return marker.exists()
