"""`cachelab whatif`: replay an access log through the proxy's own caching decisions, for several TTLs at once.

Module boundaries (each layer only imports the ones above it):

* `whatif.simulator`: the pure core. Events (time, cache key, upstream status, upstream latency) in, counters out.
  It calls the proxy's policy (proxy.policy, proxy.config.Policy) and mirrors proxy/service.py's coalescing.
* `whatif.parsers`: access-log lines of each supported format -> `Record`s, with the problems found.
* `whatif.trace`: `Record`s -> simulator events: method and host filters, the proxy's key (proxy.keys), the
  reorder window for slightly out-of-order timestamps.
* `whatif.report`: the figures per TTL, their monthly cost (analysis.cost) as text, JSON and a chart.
* `cachelab.commands.whatif`: the command line (file reading, progress bar, output files).
"""
