# Winback: `make run` starts the demo, `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint fmt bench bench-api setup deps-dev migrate demo ci clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed

deps-dev: $(BIN)/.installed-dev

migrate: setup
	$(BIN)/python manage.py migrate --noinput

# Web Push keys for the demo, made once and kept (settings read them when VAPID_* are unset).
var/vapid.env: | $(BIN)/.installed
	$(BIN)/python manage.py vapid_keys --write $@

demo: migrate var/vapid.env
	$(BIN)/python manage.py seed_demo

run: demo
	@echo ""
	@echo "  Winback is starting on http://localhost:$(PORT)/"
	@echo "  Owner:  owner@demo.example / $${DEMO_PASSWORD:-winback-demo}"
	@echo "  Staff:  staff@demo.example / $${DEMO_PASSWORD:-winback-demo}   (stamp page: /stamp/)"
	@echo "  Admin:  http://localhost:$(PORT)/admin/"
	@echo ""
	$(BIN)/honcho start

test: deps-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: deps-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports --no-cache

fmt: deps-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: deps-dev
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.pages --docs

bench-api: deps-dev
	$(BIN)/python benchmarks/api_load.py

clean:
	rm -rf var/*.sqlite3* var/celery
