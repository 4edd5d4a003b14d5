"""What a run measured and what a TTL would do: the hit-ratio and cost models, the charts, the notebooks' runner.

Outside the Locust process: this package reads what `loadtests` recorded (summary.json, measurements.json) and never
generates load. `loadtests` keeps only what a Locust process needs to generate load and record it.
"""
