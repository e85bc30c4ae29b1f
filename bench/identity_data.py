"""Generated person records with known duplicates, in FEBRL's columns (so the packaged febrl mapping imports them).

Names, streets, suburbs and postcodes are drawn from the values of FEBRL's three data sets (so their frequencies
are those of real-looking data), birth dates uniformly from 1930-2005. A fifth of the records are duplicates of an
original, each with one to three corruptions: a typo in a name (a letter dropped, doubled or swapped), a move
(another street, suburb and postcode), a missing field, or a typed birth date one digit off. Deterministic (seed).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HEADER = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode",
          "state", "date_of_birth", "soc_sec_id"]  # fmt: skip
DUPLICATE_SHARE = 0.2


def _vocabulary(febrl: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {"given_name": [], "surname": [], "address_1": [], "suburb": [], "postcode": []}
    for name in ("dataset1.csv", "dataset2.csv", "dataset3.csv"):
        with (febrl / name).open() as handle:
            for row in csv.DictReader(handle, skipinitialspace=True):
                for field, found in values.items():
                    if row[field].strip():
                        found.append(row[field].strip())
    return values


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 3:
        return word + "e"
    at = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0:
        return word[:at] + word[at + 1 :]
    if kind == 1:
        return word[:at] + word[at] + word[at:]
    return word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :]


def write_people(path: Path, records: int, febrl: Path, *, seed: int = 7) -> dict[str, str]:
    """Write ``records`` person records to ``path``; answer each record's id → its person (the ground truth)."""
    rng = np.random.default_rng(seed)
    vocabulary = _vocabulary(febrl)
    originals = int(records * (1 - DUPLICATE_SHARE))
    picks = {field: rng.integers(0, len(found), size=originals) for field, found in vocabulary.items()}
    births = rng.integers(np.datetime64("1930-01-01").astype(int), np.datetime64("2005-12-31").astype(int),
                          size=originals)  # fmt: skip
    truth: dict[str, str] = {}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        people = []
        for n in range(originals):
            person = {field: vocabulary[field][int(picks[field][n])] for field in vocabulary}
            person["date_of_birth"] = str(np.datetime64(int(births[n]), "D")).replace("-", "")
            people.append(person)
            _write(writer, f"p{n}-0", person)
            truth[f"p{n}-0"] = str(n)
        for k, n in enumerate(rng.integers(0, originals, size=records - originals)):
            twin = _corrupted(rng, dict(people[int(n)]), vocabulary)
            _write(writer, f"p{n}-d{k}", twin)
            truth[f"p{n}-d{k}"] = str(n)
    return truth


def _corrupted(rng: np.random.Generator, person: dict[str, str], vocabulary: dict[str, list[str]]) -> dict[str, str]:
    for change in rng.choice(4, size=int(rng.integers(1, 4)), replace=False):
        if change == 0:
            field = "given_name" if rng.random() < 0.5 else "surname"
            person[field] = _typo(rng, person[field])
        elif change == 1:
            for field in ("address_1", "suburb", "postcode"):
                person[field] = vocabulary[field][int(rng.integers(len(vocabulary[field])))]
        elif change == 2:
            person[["address_1", "suburb", "postcode", "given_name"][int(rng.integers(4))]] = ""
        else:
            digits = list(person["date_of_birth"])
            at = int(rng.integers(4, 8))
            digits[at] = str((int(digits[at]) + 1) % 10)
            person["date_of_birth"] = "".join(digits)
    return person


def _write(writer: object, rec_id: str, person: dict[str, str]) -> None:
    writer.writerow([rec_id, person["given_name"], person["surname"], "", person["address_1"], "",  # type: ignore[attr-defined]
                     person["suburb"], person["postcode"], "", person["date_of_birth"], ""])  # fmt: skip
