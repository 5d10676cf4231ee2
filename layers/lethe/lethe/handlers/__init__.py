"""The work behind each Lambda function. functions/<name>/app.py imports its module here at module
scope, so everything a function needs (its clients, models, routes and the inventory) loads during
INIT, which Lambda runs before the first event, and the first invocation does only its own work.
Each module imports only what its function uses: the cold start is kept short by loading less, not
by deferring the load to the first request."""
