# notebooks/: results charts and the TTL / cost model, run headless with papermill and kept stripped with nbstripout
# (python -m analysis.notebooks run | strip | check).
#   make notebooks RESULTS="results/a results/b" MEASURED="results/a" MEASURED_TTL=300
RESULTS ?=
MEASURED ?=
MEASURED_TTL ?= 300
NOTEBOOK_OUT ?= results/notebooks
NOTEBOOK_RUN = $(BIN)/python -m analysis.notebooks

.PHONY: notebooks test-notebooks strip-notebooks check-notebooks

notebooks: venv ## run both notebooks into results/notebooks/ (RESULTS, MEASURED, MEASURED_TTL)
	$(NOTEBOOK_RUN) run notebooks/01_results.ipynb --out $(NOTEBOOK_OUT)/01_results.ipynb \
		$(if $(strip $(RESULTS)),-p 'results_dirs=[$(foreach d,$(RESULTS),"$(d)",)]') \
		-p 'charts_dir="$(NOTEBOOK_OUT)/charts"'
	$(NOTEBOOK_RUN) run notebooks/02_ttl_model.ipynb --out $(NOTEBOOK_OUT)/02_ttl_model.ipynb \
		$(if $(strip $(MEASURED)),-p 'measured_runs={$(foreach d,$(MEASURED),"$(d)": $(MEASURED_TTL),)}')

test-notebooks: venv tools ## the model's tests, the charts and both notebooks on a short real run (~50 s)
	$(BIN)/pytest -q tests/notebooks

strip-notebooks: venv ## nbstripout notebooks/*.ipynb: outputs, counts, injected parameters (before committing)
	$(NOTEBOOK_RUN) strip notebooks/*.ipynb

check-notebooks: venv ## fail when a notebook has outputs, execution counts or no parameters cell
	$(NOTEBOOK_RUN) check notebooks/*.ipynb
