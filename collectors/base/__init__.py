"""What every source shares: samples, the poller protocol, redaction, settings bases, top-k bounding.

Every source folder (``collectors/<source>/``) and the service (``monitor/``) import it; it imports
neither a source nor the service.
"""
