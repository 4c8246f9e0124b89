# Two entry points, each making its own virtual environment in .venv:
#   make pretrain   short Selfie pretraining on CIFAR-10 (the main job)
#   make test       the test suite
PYTHON ?= python3
VENV ?= .venv
PRETRAIN_ARGS ?=

# Use the CIFAR-10 prepared beside the checkout when there is one; otherwise
# TFDS uses $TFDS_DATA_DIR or its default folder and downloads.
SHARED_TFDS := ../shared/datasets/tensorflow_datasets
ifneq ($(wildcard $(SHARED_TFDS)/cifar10),)
export TFDS_DATA_DIR ?= $(abspath $(SHARED_TFDS))
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv pretrain test clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[cpu,test]"
	touch $@

venv: $(VENV)/.installed

pretrain: venv
	$(VENV)/bin/python examples/pretrain_cifar10.py $(PRETRAIN_ARGS)

test: venv
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
