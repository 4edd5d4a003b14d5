"""stub_api: a slow, flaky, steerable external API for cache experiments (`cachelab stub`, `python -m stub_api`)."""

# The admin API's prefix (the stub's contract): the server's routes, its control page's calls, and stub_api.client.
ADMIN_PREFIX = "/__admin"
