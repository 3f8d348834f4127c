#!/usr/bin/env bash
# Session 9's one call on the lent GPU machine (issue 16), from the repository root there, with the packed
# live set in pack/ and the wheels the image lacks in .whl/ (soundfile, soxr, cffi, pycparser, mido):
#   bash rtamt/training/gpu_session9.sh OUT_DIR MINUTES
# Three runs side by side, five data workers each: backbone-live and backbone-keys (the same fine-tune,
# frame targets ending when a pedalled note stops sounding vs at its key release) and timbre-live.
set -uo pipefail
out=$1 minutes=$2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "
import numpy as np, soundfile, soxr, torch
from rtamt.chain import Chain
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.normalize import EnergyNorm
from rtamt.hcqt import HarmonicStack
x = Chain([SlidingCQT(CQTConfig(gamma_hz=10.0)), EnergyNorm(), HarmonicStack()]).run([np.zeros(22050, np.float32)])
print('front end ok', x.shape, 'torch', torch.__version__, torch.cuda.is_available())
" || exit 4
start=$(date +%s)
python3 -m rtamt.training.pack unpack --src pack --out /tmp/synth || exit 5
echo "unpacked in $(( $(date +%s) - start )) s"
mkdir -p "$out"
ONLY="backbone-live backbone-keys timbre-live" WORKERS=5 bash rtamt/training/gpu_runs.sh pack "$out" "$minutes" 700 700
status=$?
tail -n 3 "$out"/*.log
exit $status
