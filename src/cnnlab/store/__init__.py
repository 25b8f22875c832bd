"""The run store: one SQLite file per output folder plus an artifacts folder."""

from cnnlab.store.schema import SCHEMA_VERSION, STATUSES
from cnnlab.store.store import Store, load_state

__all__ = ["SCHEMA_VERSION", "STATUSES", "Store", "load_state"]
