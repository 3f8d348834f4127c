"""Training-side tools (data synthesis, rendering, model training). Needs the `train` extra and FluidSynth;
never imported by the runtime."""
