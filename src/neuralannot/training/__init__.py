"""Offline training jobs that build shipped assets (they may use the data layer; ``bodies`` may not)."""
