"""The work behind each Lambda function. functions/<name>/app.py stays a light module (a logger and
its handler) and imports its module here on the first invocation, so the import that every cold
start pays before the runtime is ready stays close to a bare `import boto3`."""
