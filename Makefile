# Two commands do all set-up (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/duet

.PHONY: demo test bench bench-real example clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; on Debian install it with: apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[test,train,view,plot]'
	touch $@

## Transcribe the bundled two-instrument example and print what was found.
demo: $(VENV)/.runtime
	$(BIN)/rtamt transcribe $(EXAMPLE)/mix.flac -o duet.transcribed.mid

## Lint (ruff, settings in pyproject.toml) and run the test suite.
test: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

## Benchmarks: writes JSON results under benchmarks/results/ (BACH10 expected at ../shared/data/bach10).
## Every input is checked before anything runs, and each result is written to a temporary file that
## replaces the committed one only when its command succeeded.
BACH10 ?= ../shared/data/bach10
MAPS ?= ../shared/data/maps-dev
SYNTH_TEST ?= data/synth/test
RESULTS := benchmarks/results
# $(call save,FILE,COMMAND): COMMAND's stdout to FILE through FILE.tmp, removed when COMMAND fails
save = $(2) > $(1).tmp && mv $(1).tmp $(1) || { rm -f $(1).tmp; exit 1; }

## Every real dev set beside basic-pitch (its scores are cached per piece in benchmarks/results/), and the
## note-on latency sweep on them; one command to re-run after shipping new models.
bench-real: $(VENV)/.test
	@for d in $(BACH10) $(MAPS); do ls $$d/*/mix.flac >/dev/null 2>&1 || { \
	  echo "make bench-real: no pieces (*/mix.flac, */notes.csv) under $$d (set BACH10=DIR MAPS=DIR); nothing was run" >&2; exit 2; }; done
	mkdir -p $(RESULTS)
	$(call save,$(RESULTS)/real_bach10.json,$(BIN)/rtamt eval $(BACH10) --per-piece --json)
	$(call save,$(RESULTS)/real_maps-dev.json,$(BIN)/rtamt eval $(MAPS) --per-piece --json)
	$(BIN)/python benchmarks/basic_pitch_eval.py $(BACH10) --out $(RESULTS)/basic_pitch_bach10.json
	$(BIN)/python benchmarks/basic_pitch_eval.py $(MAPS) --out $(RESULTS)/basic_pitch_maps-dev.json
	$(BIN)/rtamt bench latency --data $(BACH10) $(MAPS) --sweep --out $(RESULTS)/latency_sweep > /dev/null
	$(BIN)/python benchmarks/onset_alignment.py $(BACH10) $(MAPS) examples --split data/synth/valid data/synth-live/valid \
	  --limit 40 --json $(RESULTS)/onset_alignment.json > /dev/null
	$(call save,benchmarks/RESULTS.md,$(BIN)/python benchmarks/report.py)

bench: $(VENV)/.test
	@test -d $(BACH10) && ls $(BACH10)/*/mix.flac >/dev/null 2>&1 || { \
	  echo "make bench: BACH10 not found at $(BACH10) (folders of mix.flac, notes.csv and stems; set BACH10=DIR); nothing was run" >&2; exit 2; }
	@test -d $(SYNTH_TEST) && test -d data/synth/valid || { \
	  echo "make bench: the synthetic splits $(SYNTH_TEST) and data/synth/valid are needed (see README, Training); nothing was run" >&2; exit 2; }
	$(MAKE) bench-real
	mkdir -p $(RESULTS)
	$(call save,$(RESULTS)/cqt.json,$(BIN)/rtamt bench cqt --json)
	$(call save,$(RESULTS)/cqt_vqt10.json,$(BIN)/rtamt bench cqt --json --gamma 10)
	$(call save,$(RESULTS)/backbone.json,$(BIN)/rtamt bench backbone)
	$(call save,$(RESULTS)/latency.json,$(BIN)/rtamt bench latency)
	$(BIN)/rtamt bench latency --data examples --jack --out $(RESULTS)/latency_duet_jack > /dev/null
	$(call save,$(RESULTS)/bach10.json,$(BIN)/rtamt eval $(BACH10) --separation --json)
	$(call save,$(RESULTS)/bach10_low_latency.json,$(BIN)/rtamt eval $(BACH10) --separation --mode low-latency --json)
	$(call save,$(RESULTS)/bach10_shifts.json,$(BIN)/rtamt eval $(BACH10) --separation --shifts 0 3.9 7.7 --json)
	$(call save,$(RESULTS)/synthetic_test.json,$(BIN)/rtamt eval --synthetic $(SYNTH_TEST) --limit 30 --json)
	$(call save,$(RESULTS)/onset_diagnosis.json,$(BIN)/python benchmarks/onset_diagnosis.py $(BACH10))
	$(call save,$(RESULTS)/onset_diagnosis_low_latency.json,$(BIN)/python benchmarks/onset_diagnosis.py $(BACH10) --mode low-latency)
	$(call save,$(RESULTS)/onset_diagnosis_maps_low_latency.json,$(BIN)/python benchmarks/onset_diagnosis.py $(MAPS) --mode low-latency)
	test -d data/synth-live/valid || $(BIN)/python -m rtamt.training.data build --profile live --hours 0 --valid-hours 0.5 --test-hours 0 --seed 3 --out data/synth-live
	$(call save,$(RESULTS)/validation_latency_dry.json,$(BIN)/python -m rtamt.training.tune stored)
	$(call save,$(RESULTS)/validation_latency_rooms.json,$(BIN)/python -m rtamt.training.tune stored --acoustics 0)
	test -d data/synth-valid2/valid || $(BIN)/python -m rtamt.training.data build --out data/synth-valid2 --seed 1 --hours 0 --valid-hours 1 --test-hours 0
	$(call save,$(RESULTS)/refine_methods.json,$(BIN)/python benchmarks/refine_methods.py --data data/synth/valid data/synth-valid2/valid)
	$(call save,benchmarks/RESULTS.md,$(BIN)/python benchmarks/report.py)

clean:
	rm -rf $(VENV) duet.transcribed.mid
