"""The dataset writers of ``scripts/make_official_fixtures.py``, one module per dataset family."""
