"""The callbacks this package puts on tasks and DAGs: one wrapper for every event."""
