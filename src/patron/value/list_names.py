"""The differentiation lists by name (``value/lists.py`` holds them), light enough for the CLI and the API to name."""

from typing import Literal, get_args

ListName = Literal["tiers", "top", "bottom", "costly", "declining", "lost", "wallet-gap", "complainers", "at-risk"]
LIST_NAMES: tuple[str, ...] = get_args(ListName)
