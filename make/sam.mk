# SAM CLI targets, included from the main Makefile (usable alone too: make -f make/sam.mk build).
#   make sam-tools     SAM CLI in its own venv (.venv-sam), installed once per version
#   make build         sam build (no Docker) with a real Python 3.12 first on PATH
#   make build-check   build, then check .aws-sam/build: each function's app.py, the layer's package and deps
#   make validate-sam  sam validate --lint (no AWS credentials or network needed)
#   make deploy        sam deploy --guided (needs AWS credentials)

SAM_CLI_VERSION ?= 1.170.0
SAM_VENV ?= .venv-sam
SAM_PYTHON ?= $(or $(PYTHON),python3)
SAM_REGION ?= us-east-1
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.sam-cli-$(SAM_CLI_VERSION)
# No telemetry calls from the build machine.
SAM_ENV := SAM_CLI_TELEMETRY=0
# Set PYTHON312=/path/to/python3.12 to use that interpreter instead of searching for one.
PYTHON312 ?=
SAM_BUILD_DIR := .aws-sam/build

.PHONY: sam-tools build build-check validate-sam deploy

$(SAM_STAMP):
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"
	touch $@

sam-tools: $(SAM_STAMP)

# sam build runs the python3.12 it finds on PATH (the template's Runtime and the layer's BuildMethod).
# A pyenv shim named python3.12 exists even when 3.12 is not the selected version, and fails when
# run, so every candidate is run and the directory of the interpreter that answers 3.12 goes first.
define find_python312
for py in $(or $(PYTHON312),python3.12 \
	"$$(pyenv prefix 3.12 2>/dev/null)/bin/python3.12" \
	$$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 2>/dev/null)); do \
	real=$$("$$py" -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null) \
		&& { dirname "$$real"; break; }; \
done
endef

build: sam-tools
	@py312_dir=$$($(find_python312)); \
	if [ -z "$$py312_dir" ]; then \
		echo "make build: no Python 3.12 found (tried PYTHON312, python3.12 on PATH, pyenv)." >&2; \
		echo "Install 3.12 (e.g. 'pyenv install 3.12') or run: make build PYTHON312=/path/to/python3.12" >&2; \
		exit 1; \
	fi; \
	echo "sam build with $$py312_dir/python3.12"; \
	PATH="$$py312_dir:$$PATH" $(SAM_ENV) $(SAM) build

# The layer's ContentUri is layer/, where model_router is a symlink to the package: sam build copies
# the files it points to (and its cache hashes them too), so the layer holds python/model_router/...
# The functions are listed from the built template with Fn::ForEach expanded (scripts/built_functions.py).
build-check: build
	@set -e; \
	functions=$$($(SAM_VENV)/bin/python scripts/built_functions.py $(SAM_BUILD_DIR)/template.yaml); \
	[ -n "$$functions" ] || { echo "no functions in $(SAM_BUILD_DIR)/template.yaml" >&2; exit 1; }; \
	cd $(SAM_BUILD_DIR); \
	echo "$$functions" | while read -r fn code; do \
		[ -f "$$code/app.py" ] || { echo "$(SAM_BUILD_DIR)/$$code/app.py (code of $$fn) missing" >&2; exit 1; }; \
		echo "ok $$fn: $$code/app.py"; \
	done; \
	for f in model_router/__init__.py model_router/contracts/schemas model_router/data/router_model.json.gz aws_lambda_powertools jsonschema re2; do \
		[ -e "ModelRouterLayer/python/$$f" ] || { echo "$(SAM_BUILD_DIR)/ModelRouterLayer/python/$$f missing" >&2; exit 1; }; \
		echo "ok ModelRouterLayer/python/$$f"; \
	done; \
	if [ -n "$$(find . -type l)" ]; then echo "symlinks left in $(SAM_BUILD_DIR):" >&2; find . -type l >&2; exit 1; fi; \
	cd $(CURDIR) && $(SAM_VENV)/bin/python scripts/check_layer.py $(SAM_BUILD_DIR)/ModelRouterLayer/python/model_router

validate-sam: sam-tools
	$(SAM_ENV) AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(SAM_REGION)} $(SAM) validate --lint

deploy: build
	$(SAM_ENV) $(SAM) deploy --guided
