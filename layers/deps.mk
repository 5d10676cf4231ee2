# Included by each layer's Makefile (sam build runs them in their own directory, build_in_source): the
# pinned requirements.txt for Lambda's arm64 Python 3.11, installed once per its hash into a cache
# outside .aws-sam (LETHE_LAYER_CACHE, default ~/.cache/lethe/layer-deps), so a clean build only copies.
# uv installs them in seconds (`make sam-build` puts it in UV); without it pip does, in about a minute.
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null)
LETHE_LAYER_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lethe/layer-deps
DEPS := $(LETHE_LAYER_CACHE)/$(DEPS_PREFIX)$(shell sha256sum requirements.txt | cut -c1-16)

# No prerequisite: the folder is named by the hash of requirements.txt, so a checkout that only touches
# the file (a newer mtime) reuses it. An interrupted install stays .partial and is never used.
$(DEPS)/.complete:
	rm -rf "$(DEPS)" "$(DEPS).partial"
ifneq ($(UV),)
	"$(UV)" pip install --quiet --target "$(DEPS).partial" -r requirements.txt \
		--python-platform aarch64-manylinux2014 --python-version 3.11 --only-binary :all:
else
	$(PYTHON) -m pip install --quiet --no-warn-conflicts --disable-pip-version-check --target "$(DEPS).partial" \
		-r requirements.txt --platform manylinux2014_aarch64 --only-binary=:all: --implementation cp --python-version 3.11
endif
	touch "$(DEPS).partial/.complete"
	mv "$(DEPS).partial" "$(DEPS)"

# Copies the cached dependencies into the layer's python/ (hard links on the same file system: nothing
# edits them in place).
define copy-deps
	mkdir -p "$(ARTIFACTS_DIR)/python"
	cp -al "$(DEPS)/." "$(ARTIFACTS_DIR)/python/" 2>/dev/null || cp -r "$(DEPS)/." "$(ARTIFACTS_DIR)/python/"
	rm -f "$(ARTIFACTS_DIR)/python/.complete"
endef
