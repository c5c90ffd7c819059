# Two commands on a fresh machine: `make run` and `make test`. Everything is installed here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
export DEBUG ?= 1

.PHONY: run test install install-dev node-deps browser-deps migrate lint format bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

node-deps: node_modules/.installed

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	@echo ""
	@echo "  Chat server on http://$(HOST):$(PORT)/"
	@echo "    web client   http://$(HOST):$(PORT)/"
	@echo "    API docs     http://$(HOST):$(PORT)/api/docs/"
	@echo "    admin        http://$(HOST):$(PORT)/admin/   (create a login: $(PY) manage.py createsuperuser)"
	@echo "    mails        var/mail/ (verification codes and links)"
	@echo ""
	$(PY) -m uvicorn chatproject.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http httptools --ws gateway.transports.uvicorn_ws:WebSocketProtocol --ws-per-message-deflate false --no-access-log \
		--backlog 4096

# Debian's Chromium for the browser tests (Playwright's own download does not work here). Without
# it the browser tests skip locally; CI (CHAT_REQUIRE_SERVICES=1) fails them.
browser-deps:
	@tests/browser/install_chromium.sh || echo "warning: no /usr/bin/chromium; browser tests will be skipped (CI fails them)"

test: install-dev node-deps browser-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: install-dev node-deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) node_modules var .pytest_cache
