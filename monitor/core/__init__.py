"""The service's own core: the scheduler, the history ring, the metric catalogue, logging and units.

It builds on ``collectors.base``; the sources never import it.
"""
