"""Adapters from web frameworks to ferroscore's own pipeline (`ferroscore.pipeline`)."""
