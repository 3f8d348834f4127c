#!/usr/bin/env bash
# Trains the shipped models' GPU runs side by side on one CUDA machine (the front end runs in CPU data
# workers, so the three runs share the machine's cores). From the repository root:
#
#   python -m rtamt.training.pack pack --out pack --train-shards 6 --quality 0.2    # on the build machine
#   bash rtamt/training/gpu_runs.sh pack runs MINUTES BACKBONE_STEPS TIMBRE_STEPS    # on the GPU machine
#
# Session 4 ran backbone-gpu, backbone-gru and timbre-gpu on training shards 0-5. Session 5 continued the
# shipped backbone on fresh audio (shards 6-11: pack --first-shard 6) with two onset weights:
#
#   ONLY="backbone-gru2 backbone-onset" WORKERS=7 bash rtamt/training/gpu_runs.sh pack runs 7.7 2000 0  # twice
#
# Runs resume from RUNS/*/checkpoint.pt when present, so the same command continues them (raise the step
# counts to stretch the cosine schedules). Each run stops after MINUTES of wall time with a checkpoint.
set -euo pipefail
pack=$1 runs=$2 minutes=$3 backbone_steps=$4 timbre_steps=$5
data=${DATA:-/tmp/synth}
workers=${WORKERS:-5}
[ -d "$data/train" ] || python3 -m rtamt.training.pack unpack --src "$pack" --out "$data"
common=(--data "$data" --device cuda --batch 32 --workers "$workers" --threads 1 --max-minutes "$minutes"
        --checkpoint-every 100 --seed 2)
wanted() { [[ " ${ONLY:-backbone-gpu backbone-gru timbre-gpu} " == *" $1 "* ]]; }  # ONLY="a b": just these runs
if wanted backbone-gpu; then
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-gpu" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-ft.pt --lr 1.5e-3 --onset-width 2 >> "$runs/backbone-gpu.log" 2>&1 &
fi
if wanted backbone-gru; then
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-gru" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-ft.pt --lr 1.5e-3 --onset-width 2 --gru-hidden 16 --flux 4 \
      >> "$runs/backbone-gru.log" 2>&1 &
fi
if wanted backbone-gru2; then
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-gru2" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-gru.pt --lr 7e-4 --onset-width 2 --gru-hidden 16 --flux 4 \
      >> "$runs/backbone-gru2.log" 2>&1 &
fi
if wanted backbone-onset; then
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-onset" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-gru.pt --lr 7e-4 --onset-width 2 --gru-hidden 16 --flux 4 \
      --onset-alpha 0.4 >> "$runs/backbone-onset.log" 2>&1 &
fi
# Session 9 (issue 16): both shipped models continued on the "live" material (idioms, three banks):
#   python -m rtamt.training.data build --profile live --hours 4 --valid-hours 0.5 --test-hours 0.5 --seed 3 \
#       --out data/synth-live && python -m rtamt.training.pack pack --src data/synth-live --out pack \
#       --train-shards 8 --quality 0.1                                                      # 58 MiB, here
#   ONLY="backbone-live timbre-live" WORKERS=7 bash rtamt/training/gpu_runs.sh pack runs 7.6 1100 1100  # there
if wanted backbone-live; then
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-live" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-onset.pt --lr 5e-4 --onset-width 2 --gru-hidden 16 --flux 4 \
      --onset-alpha 0.4 >> "$runs/backbone-live.log" 2>&1 &
fi
if wanted backbone-keys; then  # the same, frame targets ending at key releases (MAPS-style labels)
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-keys" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-onset.pt --lr 5e-4 --onset-width 2 --gru-hidden 16 --flux 4 \
      --onset-alpha 0.4 --key-offsets >> "$runs/backbone-keys.log" 2>&1 &
fi
# Session 30 (issue 16): the shipped backbone grown by a context GRU that reads the HCQT and learns 40x
# faster than the rest (backbone item 22); on the CPU it ran 400 steps with --batch 8 --lr 5e-5 on
# data/synth-g3. Here, with more audio per step:
#   python -m rtamt.training.data build --out data/synth-g4 --seed 10 --hours 6 --valid-hours 0.5 \
#       --test-hours 0 && python -m rtamt.training.pack pack --src data/synth-g4 --out pack --train-shards 6 \
#       --quality 0.2                                                        # about 52 MiB, here
#   ONLY="backbone-context" WORKERS=15 bash rtamt/training/gpu_runs.sh pack runs 7.7 3000 0   # there
if wanted backbone-context; then
  python3 -m rtamt.training.backbone train "${common[@]}" --out "$runs/backbone-context" --steps "$backbone_steps" \
      --init models/checkpoints/backbone-fast.pt --lr 1e-4 --onset-width 2 --gru-hidden 16 --flux 4 \
      --onset-alpha 0.4 --fast-gamma-hz 60 --context-hidden 24 --context-input --context-lr-scale 20 \
      >> "$runs/backbone-context.log" 2>&1 &
fi
if wanted timbre-live; then
  python3 -m rtamt.training.timbre train "${common[@]}" --out "$runs/timbre-live" --steps "$timbre_steps" \
      --init models/checkpoints/timbre-gpu.pt --lr 7e-4 >> "$runs/timbre-live.log" 2>&1 &
fi
if wanted timbre-gpu; then
  python3 -m rtamt.training.timbre train "${common[@]}" --out "$runs/timbre-gpu" --steps "$timbre_steps" \
      --init models/checkpoints/timbre.pt --lr 1e-3 >> "$runs/timbre-gpu.log" 2>&1 &
fi
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit $status
