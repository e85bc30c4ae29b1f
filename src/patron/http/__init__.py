"""What the REST API and the pages share: the store, the caller, permission checks and error replies."""
