"""Run folders, metric logs (CSV + TensorBoard) and a progress bar.

A run lives in ``<root>/<name>/``::

    config.json        the run's configuration (a dataclass or mapping, JSON)
    metrics.csv        tidy long format: step,wall_time,tag,value (one row per scalar; append-only)
    tensorboard/       TensorBoard event files (the same scalars)
    checkpoints/       step_<step:012d>.pt files written by :func:`scalable.runs.checkpoint.save_checkpoint`

The CSV is tidy (one scalar per row) so that metrics logged at different rates (episode returns, losses)
need no fixed header; ``wall_time`` is seconds since the epoch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
import warnings
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm  # no stubs in the env; see the report

__all__ = ["CSV_FIELDS", "Logger", "ProgressBar", "RunDir", "RunLock"]

CSV_FIELDS: tuple[str, ...] = ("step", "wall_time", "tag", "value")
"""Columns of ``metrics.csv``."""


class RunLock:
    """An exclusive lock on a run folder (``<run>/.lock``, ``fcntl.flock``), held while a process trains in it.

    A second ``train`` / ``resume`` of the same folder raised nothing and both processes wrote its checkpoints,
    metrics.csv and config.json (until 2026-12-07): what the folder held depended on which wrote last. Now the
    second one gets ``FileExistsError`` naming the holder's pid. The lock dies with its process (a killed run
    leaves no stale lock). On platforms without ``fcntl`` it is a no-op.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) / ".lock"
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # EWOULDBLOCK / EAGAIN: another open file description holds it
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FileExistsError(f"run folder {str(self.path.parent)!r} is in use by another process (pid "
                                  f"{holder}); wait for it to finish or stop it first") from None
        except OSError as exc:  # a filesystem without flock (ENOLCK on some NFS, ENOSYS): run unlocked, say so
            os.close(fd)
            warnings.warn(f"cannot lock run folder {str(self.path.parent)!r} ({exc}); running without the lock: "
                          f"do not train in it from two processes", RuntimeWarning, stacklevel=2)
            return
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # an unreleased lock must not outlive its object (a notebook's long process)
        self.release()


def _config_dict(config: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"config must be a dataclass instance or a mapping, got {type(config).__name__}")


class RunDir:
    """The folder of one run: ``config.json``, ``metrics.csv``, ``tensorboard/``, ``checkpoints/``.

    ``RunDir(path)`` names the folder at ``path`` without touching the disk (reading its checkpoints, e.g.
    for ``eval``, makes nothing); :meth:`create` makes a new run's folder, :meth:`open` completes an existing
    one to resume it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def make_folders(self) -> None:
        """Create the folder, ``tensorboard/`` and ``checkpoints/`` (those missing)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.tensorboard_dir.mkdir(exist_ok=True)
        self.checkpoint_dir.mkdir(exist_ok=True)

    def has_logs(self) -> bool:
        """Whether the folder holds an earlier run's ``metrics.csv`` rows or TensorBoard files."""
        has_rows = self.metrics_path.is_file() and self.metrics_path.stat().st_size > 0
        return has_rows or (self.tensorboard_dir.is_dir() and any(self.tensorboard_dir.iterdir()))

    @classmethod
    def create(cls, root: str | Path = "runs", name: str | None = None, *, config: object = None,
               exist_ok: bool = False) -> RunDir:
        """Make ``<root>/<name>/`` (name defaults to a timestamp) and write ``config`` to config.json.

        Raises FileExistsError if the folder exists and ``exist_ok`` is false (use :meth:`open` to resume).
        """
        run_name = name if name is not None else time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / run_name
        if path.exists() and not exist_ok:
            raise FileExistsError(f"run folder {str(path)!r} exists; pick another name or resume it")
        run = cls(path)
        run.make_folders()
        if config is not None:
            run.write_config(config)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run folder (for resume / eval / plot); FileNotFoundError if it has no config.json."""
        p = Path(path)
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"{str(p)!r} is not a run folder (no config.json)")
        run = cls(p)
        run.make_folders()
        return run

    @property
    def config_path(self) -> Path:
        """``<run>/config.json``."""
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        """``<run>/metrics.csv``."""
        return self.path / "metrics.csv"

    @property
    def tensorboard_dir(self) -> Path:
        """``<run>/tensorboard/``."""
        return self.path / "tensorboard"

    @property
    def checkpoint_dir(self) -> Path:
        """``<run>/checkpoints/``."""
        return self.path / "checkpoints"

    def write_config(self, config: object) -> Path:
        """Write a dataclass or mapping to config.json (sorted keys; non-JSON values via ``str``)."""
        text = json.dumps(_config_dict(config), indent=2, sort_keys=True, default=str)
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(self.config_path)
        return self.config_path

    def read_config(self) -> dict[str, Any]:
        """The dict stored in config.json."""
        data = json.loads(self.config_path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{str(self.config_path)!r} does not hold a JSON object")
        return data

    def checkpoint_path(self, step: int) -> Path:
        """``<run>/checkpoints/step_<step:012d>.pt`` (zero-padded: lexical order is step order)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return self.checkpoint_dir / f"step_{step:012d}.pt"

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint with the largest step, or None."""
        found = sorted(self.checkpoint_dir.glob("step_*.pt")) if self.checkpoint_dir.is_dir() else []
        return found[-1] if found else None


class Logger:
    """Write scalars to ``metrics.csv`` and TensorBoard. Use as a context manager or call :meth:`close`.

    ``tensorboard=False`` (or a missing ``tensorboard`` package) logs to CSV only.
    """

    def __init__(self, run: RunDir, *, tensorboard: bool = True) -> None:
        self.run = run
        new = not run.metrics_path.exists() or run.metrics_path.stat().st_size == 0
        self._file: TextIO = run.metrics_path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(CSV_FIELDS)
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover - tensorboard is in the scalable extra
                self._tb = None
            else:
                self._tb = SummaryWriter(log_dir=str(run.tensorboard_dir))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record each ``tag -> value`` at ``step`` (CSV row and TensorBoard scalar)."""
        now = time.time()
        for tag, value in metrics.items():
            v = float(value)
            self._csv.writerow((int(step), f"{now:.3f}", tag, repr(v)))
            if self._tb is not None and math.isfinite(v):
                self._tb.add_scalar(tag, v, int(step), walltime=now)

    def flush(self, *, sync: bool = False) -> None:
        """Flush the CSV file and the TensorBoard writer; ``sync``: also ``os.fsync`` the CSV, so that its rows
        survive a crash of the machine, not only of the process (done before each checkpoint)."""
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ProgressBar:
    """tqdm bar over environment steps, showing steps/s and the mean of the last ``window`` episode returns.

    ``update(n, returns)`` advances by ``n`` steps and records finished episodes' returns. The training loops
    pass the run's ``return_window`` as ``window`` and, on resume, the checkpoint's recent returns as
    ``returns``, so the bar shows the same mean as the run's summary. ``disable=None`` hides the bar when
    stderr is not a terminal (tqdm's rule); ``False`` shows it anyway.
    """

    def __init__(self, total: int, *, initial: int = 0, window: int = 20, desc: str | None = None,
                 disable: bool | None = None, returns: Iterable[float] = ()) -> None:
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", unit_scale=True,
                         dynamic_ncols=True, disable=disable)
        self._returns: deque[float] = deque((float(r) for r in returns), maxlen=window)
        self._start = time.perf_counter()
        self._steps = 0

    @property
    def steps_per_second(self) -> float:
        """Steps of this session divided by its wall-clock time."""
        return self._steps / max(time.perf_counter() - self._start, 1e-9)

    @property
    def recent_return(self) -> float:
        """Mean of the last ``window`` episode returns (NaN before the first episode ends)."""
        return sum(self._returns) / len(self._returns) if self._returns else math.nan

    def update(self, n: int, returns: Iterable[float] = ()) -> None:
        """Advance by ``n`` steps; ``returns`` are the returns of episodes that ended in them."""
        self._returns.extend(float(r) for r in returns)
        self._steps += int(n)
        self._bar.set_postfix({"sps": f"{self.steps_per_second:.0f}", "return": f"{self.recent_return:.2f}"},
                              refresh=False)
        self._bar.update(int(n))

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
