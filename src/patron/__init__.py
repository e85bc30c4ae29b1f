"""Patron: one-to-one customer relationship management on the firm's own data."""

__version__ = "0.1.0"
