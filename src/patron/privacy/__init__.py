"""Privacy: what Patron holds about a person (subject access) and erasing it (the right to be forgotten)."""
