"""scalable.runs: atomic checkpoints, clear errors for bad files, RNG round-trip, run folder and logs."""

from __future__ import annotations

import csv
import pickle
import random
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scalable.core.normalize import ObservationNormalizer  # noqa: E402
from scalable.runs import checkpoint as ckpt  # noqa: E402
from scalable.runs.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from scalable.runs.logging import CSV_FIELDS, Logger, ProgressBar, RunDir  # noqa: E402


class Foreign:
    """A class that only a full (unsafe) unpickler could rebuild."""

    def __init__(self) -> None:
        self.x = 1


def _state(seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    norm = ObservationNormalizer((3,))
    norm(torch.randn(5, 3))
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "obs_norm": norm.state_dict(),
            "rng": rng_state(np.random.default_rng(seed)), "step": 1234, "config": {"lr": 1e-3, "name": "x"}}


def test_round_trip_of_model_optimizer_normalizer_and_rng(tmp_path: Path) -> None:
    state = _state()
    path = save_checkpoint(tmp_path / "c.pt", state)
    got = load_checkpoint(path)
    assert got["step"] == 1234 and got["config"] == {"lr": 1e-3, "name": "x"}
    for k, v in state["model"].items():
        assert torch.equal(got["model"][k], v)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.load_state_dict(got["model"])
    opt.load_state_dict(got["optimizer"])
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    norm = ObservationNormalizer((3,))
    norm.load_state_dict(got["obs_norm"])
    assert torch.equal(norm.rms.mean, state["obs_norm"]["mean"])
    assert list(tmp_path.iterdir()) == [tmp_path / "c.pt"]  # no temp files left


def test_crash_mid_write_leaves_the_old_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "w": torch.zeros(3)})
    before = path.read_bytes()

    def crash(payload: dict[str, Any], f: IO[bytes]) -> None:
        f.write(b"PK\x03\x04 half a zip")  # a torn write
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ckpt, "_serialize", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.ones(3)})
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]  # the temp file was removed


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_truncated_missing_and_foreign_files_raise_checkpoint_error(tmp_path: Path) -> None:
    assert issubclass(CheckpointError, ValueError)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(junk)
    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.arange(1000.0)})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)  # a torch file, but not ours
    with pytest.raises(CheckpointError, match="not a scalable checkpoint"):
        load_checkpoint(foreign)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": ckpt.FORMAT, "version": 1, "state": {"obj": Foreign()}}, unsafe)
    with pytest.raises(CheckpointError, match=r"other than tensors and plain data.*Foreign"):
        load_checkpoint(unsafe)
    plain_pickle = tmp_path / "plain.pkl"
    plain_pickle.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "obj": Foreign()}))
    with pytest.raises(CheckpointError, match=r"plain\.pkl"):
        load_checkpoint(plain_pickle)
    future = tmp_path / "future.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1, "state": {}}, future)
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(future)


def test_a_flipped_bit_in_tensor_data_is_a_checkpoint_error_not_a_wrong_weight(tmp_path: Path) -> None:
    """torch.load does not check the zip entries' CRC-32: one flipped bit inside the stored tensor loaded as
    w[984] = 728.0 (review 2026-12-06). load_checkpoint now checks every entry's CRC first."""
    import io
    import zipfile

    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.arange(10000, dtype=torch.float32)})
    raw = bytearray(good.read_bytes())
    names = [n for n in zipfile.ZipFile(io.BytesIO(bytes(raw))).namelist() if "/data/" in n]
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo(names[0])
    assert info.compress_type == zipfile.ZIP_STORED  # so the payload sits at a known offset
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[offset + 4000] ^= 0x40  # one bit inside the tensor's bytes
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="CRC"):
        load_checkpoint(bad)
    assert torch.equal(load_checkpoint(good)["w"], torch.arange(10000, dtype=torch.float32))


def test_saving_non_plain_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"state\['arr'\].*ndarray"):
        save_checkpoint(tmp_path / "c.pt", {"arr": np.zeros(3)})
    with pytest.raises(CheckpointError, match="Foreign"):
        save_checkpoint(tmp_path / "c.pt", {"nested": [1, {"o": Foreign()}]})
    assert not list(tmp_path.iterdir())


def _draws(gen: np.random.Generator) -> tuple[Any, ...]:
    return (torch.rand(4), torch.randint(0, 100, (3,)), random.random(), np.random.rand(2).tolist(),  # noqa: NPY002
            gen.random(3).tolist())


def test_rng_state_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    gen = np.random.default_rng(7)
    torch.manual_seed(1)
    random.seed(2)
    np.random.seed(3)  # noqa: NPY002
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state(gen)})
    first = _draws(gen)
    gen2 = np.random.default_rng(999)
    set_rng_state(load_checkpoint(path)["rng"], gen2)
    second = _draws(gen2)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[2:] == second[2:]
    with pytest.raises(CheckpointError, match="numpy"):
        set_rng_state({k: v for k, v in load_checkpoint(path)["rng"].items() if k != "numpy"}, gen2)
    with pytest.raises(CheckpointError, match="malformed"):
        set_rng_state({"torch": "nope"})


def test_run_dir_logger_and_progress_bar(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "ppo-cartpole-0", config={"lr": 3e-4, "env": "CartPole-v1"})
    assert run.read_config() == {"env": "CartPole-v1", "lr": 3e-4}
    assert run.tensorboard_dir.is_dir() and run.checkpoint_dir.is_dir()
    with pytest.raises(FileExistsError):
        RunDir.create(tmp_path, "ppo-cartpole-0")
    with Logger(run) as log:
        log.log(10, {"loss/policy": 0.5, "charts/return": 1.0})
        log.log(20, {"loss/policy": 0.25})
    with Logger(RunDir.open(run.path), tensorboard=False) as log:  # resume appends, no second header
        log.log(30, {"loss/policy": 0.125})
    with run.metrics_path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == 5
    assert [(int(r[0]), r[2], float(r[3])) for r in rows[1:]] == [
        (10, "loss/policy", 0.5), (10, "charts/return", 1.0), (20, "loss/policy", 0.25), (30, "loss/policy", 0.125)]
    assert any(p.name.startswith("events.out.tfevents") for p in run.tensorboard_dir.iterdir())
    assert run.latest_checkpoint() is None
    save_checkpoint(run.checkpoint_path(100), {"step": 100})
    save_checkpoint(run.checkpoint_path(20), {"step": 20})
    assert run.latest_checkpoint() == run.checkpoint_path(100)
    with ProgressBar(1000, disable=True) as bar:
        assert np.isnan(bar.recent_return)
        bar.update(10, [1.0, 3.0])
        bar.update(10)
        assert bar.recent_return == 2.0 and bar.steps_per_second > 0
    with pytest.raises(FileNotFoundError):
        RunDir.open(tmp_path / "nope")


def test_seed_everything_makes_cpu_draws_reproducible() -> None:
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        draws = [_draws(ckpt.seed_everything(5)) for _ in range(2)]
        assert torch.equal(draws[0][0], draws[1][0]) and draws[0][2:] == draws[1][2:]
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(prev)


def test_action_stream_is_independent_of_the_weight_initialisation_stream() -> None:
    """A run seeds its weights with ``torch.manual_seed(seed)`` and samples actions / minibatches from
    ``RunState.generator``. Seeded with the same integer, the two would draw the same normals: the first
    actions' noise would be the very numbers the first layer was initialised from. ``stream_seed`` gives
    each stream its own seed (deterministic, distinct across streams and seeds, 63-bit, rejects < 0)."""
    from scalable.agents.common import RunState
    from scalable.runs.checkpoint import stream_seed

    for seed in (0, 1, 12345):
        torch.manual_seed(seed)
        init = torch.randn(64)
        act = torch.randn(64, generator=RunState(seed, 10).generator)
        assert not torch.equal(init, act)
        r = float(torch.corrcoef(torch.stack([init, act]))[0, 1])
        assert abs(r) < 0.5  # independent streams: sd(r) ~ 1/8, so |r| >= 0.5 has probability ~ 1e-4
        assert stream_seed(seed, "actions") == stream_seed(seed, "actions")
        assert stream_seed(seed, "actions") != stream_seed(seed, "other")
        assert 0 <= stream_seed(seed, "actions") < 2**63
    assert len({stream_seed(s, "actions") for s in range(1000)}) == 1000
    with pytest.raises(ValueError):
        stream_seed(-1, "actions")


def test_flipped_bits_in_the_zip_directory_raise_checkpoint_error(tmp_path: Path) -> None:
    """A flipped bit in the zip central directory (the 'encrypted' flag, the version needed) made zipfile raise
    RuntimeError / NotImplementedError, which reached `resume` / `eval` as tracebacks (review of 2026-12-07; 298
    of 9 342 single-bit flips of a real checkpoint). Every such file now raises CheckpointError."""
    import struct

    from scalable.runs.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    p = tmp_path / "c.pt"
    for off, bit in ((8, 0x01), (6, 0x80)):  # general-purpose flag: encrypted; version needed to extract
        save_checkpoint(p, {"w": torch.arange(4.0)})
        b = bytearray(p.read_bytes())
        cd = struct.unpack("<I", bytes(b[-22 + 16:-22 + 20]))[0]  # offset of the first central-directory entry
        b[cd + off] ^= bit
        p.write_bytes(bytes(b))
        with pytest.raises(CheckpointError):
            load_checkpoint(p)
