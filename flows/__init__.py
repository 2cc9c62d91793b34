"""Prefect flows: thin orchestration over the srgan library."""
