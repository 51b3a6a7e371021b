"""Async triggers for the long waits of the pipeline; the triggerer imports them from plugins/."""
