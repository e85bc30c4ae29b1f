"""Background work on a Redis queue (RQ): scheduled scoring, segment refresh and base-wide triggers."""
