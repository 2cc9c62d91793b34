# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO   := demo-out

.PHONY: install system demo test bench deploy clean server server-stop worker control-worker

install: system $(STAMP)

# Debian packages the pipeline needs: poppler (pdf2image), fonts for the sample writer, tesseract (OCR checks and
# upscale.ocr_layer), jbig2dec (JBIG2 scan images read in place by pikepdf), qpdf (the PDF tests' --check),
# the type families of the synthetic training documents (srgan/training/fonts.py), PostgreSQL (with
# pg_trgm) for the Prefect server of `make server` and the deployment tests; Chromium, in which the report
# test opens `srgan report`'s HTML page headless (tests/browser.py); and for the hosts-apart tests
# (srgan/bench/netns.py) iproute2 (ip netns), nftables (random loss) and faketime (clock skew).
system:
	@missing=""; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr tesseract-ocr-eng"; \
	command -v qpdf >/dev/null || missing="$$missing qpdf"; \
	command -v jbig2dec >/dev/null || missing="$$missing jbig2dec"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	[ -d /usr/share/fonts/truetype/liberation ] || missing="$$missing fonts-liberation"; \
	for pkg in fonts-urw-base35 fonts-texgyre fonts-ebgaramond fonts-linuxlibertine fonts-crosextra-caladea \
	  fonts-crosextra-carlito fonts-noto-core fonts-freefont-ttf fonts-dejavu-extra fonts-cmu \
	  fonts-league-spartan fonts-quicksand; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	command -v pg_ctlcluster >/dev/null || missing="$$missing postgresql"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/srgan make-sample $(DEMO)/sample
	$(BIN)/srgan upscale $(DEMO)/sample/rvl_sample.tar.gz $(DEMO)/sample/sample.pdf --out $(DEMO)/result; \
	  status=$$?; [ $$status -eq 0 ] || [ $$status -eq 3 ] || exit $$status
	@echo
	$(BIN)/srgan report $(CURDIR)/$(DEMO)/result

test: install
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python -m srgan.bench

# Work pool `srgan`, the GPU concurrency limit and the deployments of prefect.yaml, on the Prefect
# server at PREFECT_API_URL (e.g. http://127.0.0.1:4200/api after `prefect server start`).
deploy: install
	$(BIN)/srgan deploy

# Workers on the pool `srgan` (PREFECT_API_URL set; docs/running.md): a unit worker takes one run at a
# time (one per GPU with CUDA_VISIBLE_DEVICES=N, or several on a CPU machine); a control worker runs the
# parents of sharded and nightly runs, which only wait on their units.
worker: install
	$(BIN)/srgan worker

control-worker: install
	$(BIN)/srgan worker --control

# The Prefect server on Debian's PostgreSQL, in the background (scripts/server.sh): `make server PORT=4391`.
PORT ?= 4200
server: install
	PORT=$(PORT) PREFECT=$(BIN)/prefect scripts/server.sh start

server-stop:
	scripts/server.sh stop

clean:
	rm -rf $(DEMO) .pytest_cache
