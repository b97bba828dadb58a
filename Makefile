# The two commands a new user needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := runs/demo
DEMO_MINUTES ?= 4
JUDGE := runs/judge

.PHONY: install system demo test lint check clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,demo,face,export,tensorboard,video,hub]"
	touch $(STAMP)

install: $(STAMP) system  ## create .venv and install facefilter with every extra the README uses

# Debian packages the tests use as outside readers and drivers: chromium for the demo's
# browser test (through Playwright, no browser download), exiftool, which reads back
# the "made by a filter" label every output carries, and Noto Color Emoji, whose faces
# the emoji: data source draws. Each is COMMAND:PACKAGE, or FILE:PACKAGE for a package
# that installs no command (a first part starting with / is a file, checked with -e).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DEBIAN := chromium:chromium exiftool:libimage-exiftool-perl \
	/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf:fonts-noto-color-emoji
system:  ## install the Debian packages the tests use (chromium, exiftool, the emoji font), unless they are there
	@for pair in $(DEBIAN); do \
		have=$${pair%%:*}; package=$${pair#*:}; \
		case $$have in /*) [ -e $$have ] && continue;; *) command -v $$have >/dev/null && continue;; esac; \
		[ "$$FACEFILTER_SKIP_BROWSER" = 1 ] && [ $$package = chromium ] && continue; \
		echo "installing Debian's $$package for the tests"; \
		$(SUDO) apt-get install -y -q --no-install-recommends $$package >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && \
		  $(SUDO) apt-get install -y -q --no-install-recommends $$package >/dev/null; } || \
		echo "warning: could not install $$package (apt-get install $$package); the tests" \
		     "that need it will fail until it is there"; \
	done

# The judge of every style verdict: a classifier trained once (4 CPU minutes) and kept.
$(JUDGE)/model.safetensors: | $(STAMP)
	rm -rf $(JUDGE)
	$(BIN)/facefilter train classifier --data synth:photo,anime,cartoon --size 64 \
		--no-progress --out $(JUDGE)

demo: $(STAMP) $(JUDGE)/model.safetensors  ## train cyclegan-lite on synthetic photo->anime faces for a few minutes, then apply it
	rm -rf $(DEMO)
	$(BIN)/facefilter train cyclegan-lite --data-a synth:photo --data-b synth:anime \
		--size 64 --batch-size 4 --max-steps 3000 --train-time $(DEMO_MINUTES) \
		--sample-every 200 --save-every 200 --out $(DEMO)
	$(BIN)/facefilter data synth --out $(DEMO)/held-out --count 12 --size 64 --seed 12345 --styles photo
	$(BIN)/facefilter apply $(DEMO) $(DEMO)/held-out/photo --to anime -o $(DEMO)/applied \
		--detect never --sheet $(DEMO)/sheet.png
	$(BIN)/facefilter eval $(DEMO) --to anime --count 100 --classifier $(JUDGE) -o $(DEMO)/eval
	$(BIN)/facefilter data sample-photo -o $(DEMO)/astronaut.png
	$(BIN)/facefilter apply $(DEMO) $(DEMO)/astronaut.png --to anime \
		-o $(DEMO)/astronaut_anime.jpg --compare
	$(BIN)/facefilter data sample-photo --which people -o $(DEMO)/real
	$(BIN)/facefilter data crop $(DEMO)/real $(DEMO)/real-faces --size 64 --like $(DEMO) \
		--largest
	$(BIN)/facefilter eval $(DEMO) --to anime --data folder:$(DEMO)/real-faces \
		--classifier $(JUDGE) -o $(DEMO)/eval-real
	@echo
	@echo "Done. Look at:"
	@echo "  $(DEMO)/sheet.png          held-out synthetic photos and their anime translations"
	@echo "  $(DEMO)/eval/              the filter measured on 100 held-out faces against their true anime twins"
	@echo "  $(DEMO)/astronaut_anime.jpg  a real photo (shipped by scikit-image): face found, translated, pasted back"
	@echo "  $(DEMO)/eval-real/         the filter on 91 real faces (the astronaut, Grace Hopper, 89 of LFW):"
	@echo "                             the judge's verdict beside its controls, and dlib identity"
	@echo "  $(DEMO)/samples/           training sample grids, one labelled row per image kind"
	@echo "  $(DEMO)/loss.png           losses (G and D overlaid);  $(DEMO)/metrics.jsonl the numbers"
	@echo "Train on your own faces: see 'Your own data' in README.md"
	@echo
	@echo "Try it in your browser (upload a photo, move the strength slider, download the result):"
	@echo "  $(BIN)/facefilter demo $(DEMO)      then open http://127.0.0.1:7860"

test: $(STAMP) system  ## run the test suite (CPU only, no network)
	$(BIN)/python -m pytest -n 2 --durations=10

lint: $(STAMP)  ## ruff (lint + format) and mypy, as CI runs them
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

check: test lint
