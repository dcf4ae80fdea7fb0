"""Business rules: plain async functions and small classes over `models/`, importing no aiohttp.
The HTTP views, the handlers and the commands call them."""
