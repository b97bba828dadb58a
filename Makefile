# The two commands a new user needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := runs/demo
DEMO_MINUTES ?= 4

.PHONY: install demo test lint check clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,face,export,tensorboard,video]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install facefilter with every extra the README uses

demo: $(STAMP)  ## train cyclegan-lite on synthetic photo->anime faces for a few minutes, then apply it
	rm -rf $(DEMO)
	$(BIN)/facefilter train cyclegan-lite --data-a synth:photo --data-b synth:anime \
		--size 64 --batch-size 4 --max-steps 3000 --train-time $(DEMO_MINUTES) \
		--sample-every 200 --save-every 200 --out $(DEMO)
	$(BIN)/facefilter data synth --out $(DEMO)/held-out --count 12 --size 64 --seed 12345 --styles photo
	$(BIN)/facefilter apply $(DEMO) $(DEMO)/held-out/photo --to anime -o $(DEMO)/applied \
		--detect never --sheet $(DEMO)/sheet.png
	$(BIN)/facefilter data sample-photo -o $(DEMO)/astronaut.png
	$(BIN)/facefilter apply $(DEMO) $(DEMO)/astronaut.png --to anime \
		-o $(DEMO)/astronaut_anime.jpg --compare
	@echo
	@echo "Done. Look at:"
	@echo "  $(DEMO)/sheet.png          held-out synthetic photos and their anime translations"
	@echo "  $(DEMO)/astronaut_anime.jpg  a real photo (shipped by scikit-image): face found, translated, pasted back"
	@echo "  $(DEMO)/samples/           training sample grids, one labelled row per image kind"
	@echo "  $(DEMO)/loss.png           losses (G and D overlaid);  $(DEMO)/metrics.jsonl the numbers"
	@echo "Train on your own faces: see 'Your own data' in README.md"

test: $(STAMP)  ## run the test suite (CPU only, no network)
	$(BIN)/python -m pytest -n 2 --durations=10

lint: $(STAMP)  ## ruff (lint + format) and mypy, as CI runs them
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

check: test lint
