"""The recovery service's HTTP shell: settings, the FastAPI app, problem details, limits, metrics."""
