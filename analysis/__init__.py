"""What a run measured and what a TTL would do: the hit-ratio and cost models, the charts, the notebooks' runner.

Outside the Locust process: this package reads what `loadtests` recorded (summary.json, measurements.json) and never
generates load. `loadtests` keeps only what a Locust process needs to generate load and record it.

* `analysis.ttl_model`: a TTL cache's hit ratio under Zipf traffic (long run, a finite run from cold, per second).
* `analysis.agreement`: a steady run against that model (predicted and measured, in percentage points).
* `analysis.cost`: one month of a deployment with and without the cache (also whatif's cost per TTL).
* `analysis.results`: a results directory loaded, the series and tables its charts show (no matplotlib).
* `analysis.charts`: its charts (`write_charts`: what `cachelab demo` draws), `png_bytes`, `save`.
* `analysis.model_charts`: the model's charts (TTL curves, warm-up against a run, cost).
* `analysis.notebooks`: `python -m analysis.notebooks run | strip | check` (papermill, nbstripout).
"""
