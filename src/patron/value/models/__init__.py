"""Repeat-purchase and spend models fitted by maximum likelihood."""
