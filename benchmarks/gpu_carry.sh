#!/usr/bin/env bash
# Build .whl/ (git-ignored via .git/info/exclude) with what a bare GPU machine of this workplace lacks for
# scalable's Atari runs: gymnasium, ale-py, Stable-Baselines3 and envpool wheels for CPython 3.12, plus a
# trimmed envpool_assets package (Atari ROMs, the directory skeleton envpool lists at import, and the small
# JSON metadata, including the MyoSuite task list from envpool_assets_mujoco_large). About 57 MB, under the
# 64 MiB that travels. Needs this machine's dev venv with envpool installed (ASSETS below).
#
# On the GPU machine, start every command with:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
#   export PYTHONPATH=$PWD/.whl/site:/tmp/site:$PWD
# and name .whl in carry. (2026-11-25: the H100 image has torch 2.11 + CUDA, Python 3.12, no gymnasium.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/tmp/v/bin/python}
SITE=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
mkdir -p .whl/site
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  plat+=(--platform "$p")
done
for pkg in gymnasium==1.4.0 farama-notifications==0.0.6 ale-py==0.12.1 stable-baselines3==2.9.2 envpool==1.2.5 \
           dm-env==1.6 dm-tree==0.1.10 optree==0.20.0 types-protobuf==7.35.1.20260906; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
      -d .whl "$pkg"
done
src="$SITE/envpool_assets"
dst=.whl/site/envpool_assets
(cd "$src" && find . -type d -not -path "*__pycache__*") | while read -r d; do mkdir -p "$dst/$d"; done
cp "$src/__init__.py" "$dst/"
cp -r "$src/atari/." "$dst/atari/"
(cd "$src" && find . -name "*.json" -size -2M) | while read -r f; do cp "$src/$f" "$dst/$f"; done
large="$SITE/envpool_assets_mujoco_large/mujoco/myosuite/assets/metadata"
mkdir -p "$dst/mujoco/myosuite/assets/metadata"
cp "$large"/*.json "$dst/mujoco/myosuite/assets/metadata/"
find .whl/site -name __pycache__ -prune -exec rm -rf {} +
du -sh .whl
