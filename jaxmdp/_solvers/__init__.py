"""One algorithm per file; each implements the protocol in `base.py`."""
