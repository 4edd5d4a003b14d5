"""stub_api: a slow, flaky, steerable external API for cache experiments (`cachelab stub`, `python -m stub_api`)."""
