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
BACH10 ?= ../shared/data/bach10
MAPS ?= ../shared/data/maps-dev

## Every real dev set beside basic-pitch (its scores are cached per piece in benchmarks/results/), and the
## note-on latency sweep on them; one command to re-run after shipping new models.
bench-real: $(VENV)/.test
	mkdir -p benchmarks/results
	$(BIN)/rtamt eval $(BACH10) --per-piece --json > benchmarks/results/real_bach10.json
	$(BIN)/rtamt eval $(MAPS) --per-piece --json > benchmarks/results/real_maps-dev.json
	$(BIN)/python benchmarks/basic_pitch_eval.py $(BACH10) --out benchmarks/results/basic_pitch_bach10.json
	$(BIN)/python benchmarks/basic_pitch_eval.py $(MAPS) --out benchmarks/results/basic_pitch_maps-dev.json
	$(BIN)/rtamt bench latency --data $(BACH10) $(MAPS) --sweep --out benchmarks/results/latency_sweep > /dev/null
	$(BIN)/python benchmarks/report.py > benchmarks/RESULTS.md

bench: $(VENV)/.test bench-real
	mkdir -p benchmarks/results
	$(BIN)/rtamt bench cqt --json > benchmarks/results/cqt.json
	$(BIN)/rtamt bench cqt --json --gamma 10 > benchmarks/results/cqt_vqt10.json
	$(BIN)/rtamt bench backbone > benchmarks/results/backbone.json
	$(BIN)/rtamt bench latency > benchmarks/results/latency.json
	$(BIN)/rtamt bench latency --data examples --jack --out benchmarks/results/latency_duet_jack > /dev/null
	$(BIN)/rtamt eval $(BACH10) --separation --json > benchmarks/results/bach10.json
	$(BIN)/rtamt eval $(BACH10) --separation --mode low-latency --json > benchmarks/results/bach10_low_latency.json
	$(BIN)/rtamt eval --synthetic data/synth/test --limit 30 --json > benchmarks/results/synthetic_test.json
	$(BIN)/python benchmarks/onset_diagnosis.py $(BACH10) > benchmarks/results/onset_diagnosis.json
	test -d data/synth-valid2/valid || $(BIN)/python -m rtamt.training.data build --out data/synth-valid2 --seed 1 --hours 0 --valid-hours 1 --test-hours 0
	$(BIN)/python benchmarks/refine_methods.py --data data/synth/valid data/synth-valid2/valid > benchmarks/results/refine_methods.json
	$(BIN)/python benchmarks/report.py > benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) duet.transcribed.mid
