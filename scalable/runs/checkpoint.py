"""Atomic checkpoints of tensors and plain data, loaded with ``torch.load(weights_only=True)``.

A checkpoint file is ``torch.save`` of ``{"format": FORMAT, "version": VERSION, "state": state}``;
``state`` may hold only tensors, ``bool``/``int``/``float``/``str``/``None``, and lists, tuples and
dicts (string keys) of these (module, optimiser and normaliser ``state_dict()``s and
:func:`rng_state` qualify). Nothing is pickled that ``weights_only=True`` would refuse, so loading never
runs code from the file.

* :func:`save_checkpoint` writes a temporary file in the target directory, flushes and fsyncs it, then
  ``os.replace``s it over the target (atomic on POSIX) and fsyncs the directory: a crash at any moment
  leaves either the old checkpoint or the new one, never a torn file.
* :func:`load_checkpoint` raises :class:`CheckpointError` (a ``ValueError``) naming the path and the
  reason for a missing file, a corrupt or truncated file, a torch file that is not a `scalable`
  checkpoint, a pickle that ``weights_only`` refuses, or an unsupported version.
* :func:`rng_state` / :func:`set_rng_state` capture and restore torch's CPU (and CUDA, if present)
  generator, python's ``random``, numpy's legacy global generator and, optionally, a
  ``numpy.random.Generator`` (its ``bit_generator.state``, plain data).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "stream_seed",
]

FORMAT: str = "scalable-checkpoint"
"""Format marker stored in every checkpoint."""
VERSION: int = 1
"""Checkpoint layout version; :func:`load_checkpoint` accepts versions up to this one."""


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read: missing, corrupt, foreign, unsafe or of an unknown version."""


def _check_plain(x: object, where: str) -> None:
    if x is None or isinstance(x, (bool, int, float, str, torch.Tensor, torch.dtype, torch.Size)):
        return
    if isinstance(x, Mapping):
        for k, v in x.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"checkpoint state key {k!r} at {where} must be a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(f"checkpoint state at {where} has type {type(x).__name__}; only tensors and plain "
                          "data (bool, int, float, str, None, list, tuple, dict) load with weights_only=True")


def _serialize(payload: dict[str, Any], f: IO[bytes]) -> None:
    """Write the payload to an open binary file (a seam for the crash tests)."""
    torch.save(payload, f)


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Atomically write ``state`` (tensors and plain data) to ``path``; return the path.

    Temp file in the same directory + flush + fsync + ``os.replace`` + directory fsync. On any error the
    temp file is removed and an existing checkpoint at ``path`` is left untouched. Raises
    :class:`CheckpointError` if ``state`` holds anything but tensors and plain data.
    """
    target = Path(path)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint state must be a mapping, got {type(state).__name__}")
    _check_plain(state, "state")
    payload: dict[str, Any] = {"format": FORMAT, "version": VERSION, "state": dict(state)}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            _serialize(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # directory fsync: durability of the rename (not on all platforms)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; return its ``state`` dict.

    Uses ``torch.load(weights_only=True)``, after checking the CRC-32 of every entry of the zip archive (torch
    does not). Raises :class:`CheckpointError` naming the path for a missing, unreadable, corrupt (any entry
    failing its CRC, tensor data included) or truncated file, a non-`scalable` file, or a newer version.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint file at {str(p)!r}")
    try:  # is_zipfile itself raised BadZipFile on a damaged zip64 locator ("spans multiple disks")
        is_zip = zipfile.is_zipfile(p)
    except Exception as exc:
        raise CheckpointError(f"cannot load checkpoint {str(p)!r}: the zip archive is unreadable "
                              f"({type(exc).__name__}: {exc})") from exc
    if not is_zip:
        raise CheckpointError(f"cannot load checkpoint {str(p)!r}: not a torch zip archive (the file is corrupt, "
                              "truncated or in a foreign format)")
    # torch's zip reader does not check the CRC-32 that the archive stores for each entry, so a flipped bit in
    # tensor data would load as a wrong parameter value; zipfile checks every entry's CRC first
    try:
        with zipfile.ZipFile(p) as zf:
            bad = zf.testzip()
    except Exception as exc:  # also RuntimeError ("encrypted") and NotImplementedError ("zip file version") from
        # a flipped bit in the central directory, which reached the CLI as tracebacks
        raise CheckpointError(f"cannot load checkpoint {str(p)!r}: the zip archive is unreadable "
                              f"({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise CheckpointError(f"checkpoint {str(p)!r} is corrupt: entry {bad!r} fails its CRC-32 check (the file was "
                              "damaged after it was written)")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL\s+(\S+)", str(exc))
        detail = f" (unsupported global {found.group(1)})" if found else ""
        raise CheckpointError(f"cannot load checkpoint {str(p)!r}: it holds objects other than tensors and plain "
                              f"data, which torch.load(weights_only=True) refuses{detail}; a scalable checkpoint "
                              "never does, so the file is foreign, unsafe or corrupt") from exc
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"cannot load checkpoint {str(p)!r}: the file is corrupt or truncated "
                              f"({type(exc).__name__}: {first})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(p)!r} is a torch file but not a scalable checkpoint "
                              f"(format marker {FORMAT!r} missing)")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise CheckpointError(f"checkpoint {str(p)!r} has version {version!r}; this code reads versions 1..{VERSION}")
    state = payload.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(p)!r} has no 'state' dict")
    return state


def _np_global_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002 (third-party code may use it)
    return {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
            "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def rng_state(generator: np.random.Generator | None = None) -> dict[str, Any]:
    """Plain-data snapshot of every random generator a run uses; restore with :func:`set_rng_state`.

    Keys: "torch" (CPU ByteTensor), "torch_cuda" (list, if CUDA is available), "python" (``random``
    state as nested tuples), "numpy_global" (legacy ``np.random`` state), and "numpy" (the
    ``bit_generator.state`` dict of ``generator``) when one is given.
    """
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": (int(version), tuple(int(i) for i in internal), gauss),
        "numpy_global": _np_global_state(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = list(torch.cuda.get_rng_state_all())
    if generator is not None:
        state["numpy"] = dict(generator.bit_generator.state)
    return state


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the random stream named ``stream`` of a run seeded with ``seed``, independent of the
    others: ``numpy.random.SeedSequence([seed, crc32(stream)])``. Two torch generators seeded with the same
    integer draw the same numbers, so a run must not seed its weight initialisation (the global torch RNG,
    ``torch.manual_seed(seed)``) and its action sampling with one seed."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    ss = np.random.SeedSequence([int(seed), zlib.crc32(stream.encode("utf-8"))])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int, *, deterministic: bool = True) -> np.random.Generator:
    """Seed torch, python ``random`` and numpy's global generator; return ``np.random.default_rng(seed)``.

    ``deterministic`` also calls ``torch.use_deterministic_algorithms(True, warn_only=True)`` (cheap on
    CPU) so a seeded CPU run is reproducible.
    """
    s = int(seed)
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2**32)  # noqa: NPY002 (third-party code may use the global generator)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(s)


def set_rng_state(state: Mapping[str, Any], generator: np.random.Generator | None = None) -> None:
    """Restore generators from :func:`rng_state`; ``generator`` (if given) gets the "numpy" entry.

    Raises :class:`CheckpointError` if an entry is missing or malformed.
    """
    try:
        torch.set_rng_state(state["torch"])
        version, internal, gauss = state["python"]
        random.setstate((int(version), tuple(int(i) for i in internal), gauss))
        g = state["numpy_global"]
        keys = np.asarray(g["keys"].numpy() if isinstance(g["keys"], torch.Tensor) else g["keys"], dtype=np.uint32)
        legacy = (str(g["name"]), keys, int(g["pos"]), int(g["has_gauss"]), float(g["cached_gaussian"]))
        np.random.set_state(legacy)  # noqa: NPY002 (restores what rng_state captured)
        if "torch_cuda" in state and torch.cuda.is_available():  # as many devices as both machines have
            for i, st in enumerate(list(state["torch_cuda"])[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(st, i)
        if generator is not None:
            if "numpy" not in state:
                raise CheckpointError("rng state has no 'numpy' entry for the given numpy Generator")
            generator.bit_generator.state = state["numpy"]
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"malformed rng state: {type(exc).__name__}: {exc}") from exc
