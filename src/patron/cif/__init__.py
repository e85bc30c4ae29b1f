"""The customer information file: schema, store, import, identity resolution, quality and retention."""
