# Two commands on a fresh machine: `make demo` and `make test`. Both create the virtual
# environment when it is missing (or older than pyproject.toml), install, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE ?= 1
PRESET ?= demo
PORT ?= 3000
PYTEST_ARGS ?=

.PHONY: install demo test lint format reports mlflow-ui optuna-dashboard clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	# Only read for their bundled data files (CDNOW, MovieLens-100k); never imported.
	$(BIN)/python -m pip install --quiet --no-deps lifetimes==0.11.3 recbole==1.2.1
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/crm demo --preset $(PRESET) --port $(PORT) $(if $(filter 0,$(SERVE)),--no-serve,)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The notebooks executed (on the `make demo` outputs when they exist, else on the tiny pipeline
# they build) and rendered to HTML in out/reports/; REPORT_ARGS=--no-input leaves the code out.
REPORT_ARGS ?=
reports: install
	$(BIN)/jupyter nbconvert --execute --to html --ExecutePreprocessor.timeout=1800 \
		--output-dir out/reports $(REPORT_ARGS) notebooks/*.ipynb

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root ./mlflow/artifacts --host 127.0.0.1 --port 5000

# The Optuna studies of the store the jobs use (CRM_OPTUNA_STORAGE, else optuna.db in CRM_STORE_DIR).
optuna-dashboard: install
	$(BIN)/optuna-dashboard "$${CRM_OPTUNA_STORAGE:-sqlite:///$${CRM_STORE_DIR:-mlflow}/optuna.db}" --host 127.0.0.1 --port 8080

clean:
	rm -rf out .pytest_cache .ruff_cache
