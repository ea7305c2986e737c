# IaC security scan, included from the main Makefile (usable alone too: make -f make/scan.mk scan).
#   make scan-tools    checkov in its own venv (.venv-scan): it pins boto3/botocore far below what the
#                      project needs, so it cannot share .venv
#   make scan          checkov on template.yaml with its Fn::ForEach loops expanded (checkov does not expand
#                      them) and after the SAM transform (the IAM roles SAM generates); any failed check fails
#                      the build; a third run with HttpApi=true, since checkov skips resources whose condition is
#                      false on the defaults. Suppressions: .checkov.yaml (checks that do not apply to this architecture)
#                      and Metadata: checkov: skip next to a resource.

CHECKOV_VERSION ?= 3.3.30
SCAN_VENV ?= .venv-scan
SCAN_PYTHON ?= $(or $(PYTHON),python3)
CHECKOV := $(SCAN_VENV)/bin/checkov
CHECKOV_STAMP := $(SCAN_VENV)/.checkov-$(CHECKOV_VERSION)
SCAN_DIR := .aws-sam/scan

.PHONY: scan-tools scan

$(CHECKOV_STAMP):
	$(SCAN_PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

scan-tools: $(CHECKOV_STAMP)

scan: scan-tools sam-tools
	mkdir -p $(SCAN_DIR)
	.venv-sam/bin/python scripts/sam_translate.py --expanded template.yaml > $(SCAN_DIR)/template.expanded.json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} .venv-sam/bin/python scripts/sam_translate.py template.yaml \
		> $(SCAN_DIR)/template.transformed.json
	$(CHECKOV) --config-file .checkov.yaml -f $(SCAN_DIR)/template.expanded.json
	$(CHECKOV) --config-file .checkov.yaml -f $(SCAN_DIR)/template.transformed.json
	# The HTTP API is off by default, and checkov leaves out resources whose condition is false: scan it on too.
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} .venv-sam/bin/python scripts/sam_translate.py \
		--default=HttpApi=true template.yaml > $(SCAN_DIR)/template.http-api.json
	$(CHECKOV) --config-file .checkov.yaml -f $(SCAN_DIR)/template.http-api.json
