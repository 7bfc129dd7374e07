"""Projections of the ledger: read models rebuilt from the events (balances, continuity)."""
