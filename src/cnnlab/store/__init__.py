"""The run store: one SQLite file per output folder plus an artifacts folder, and the format of
the evaluation files (predictions, examples) a finished run leaves there."""

from cnnlab.store.artifacts import (
    EXAMPLES_PER_KIND, ExampleImages, Examples, Predictions, SplitPredictions, evaluation_files, read_examples,
    read_predictions, read_weights, serialize_weights,
)
from cnnlab.store.schema import SCHEMA_VERSION, STATUSES
from cnnlab.store.store import Store

__all__ = ["SCHEMA_VERSION", "STATUSES", "Store", "EXAMPLES_PER_KIND", "ExampleImages", "Examples",
           "Predictions", "SplitPredictions", "evaluation_files", "read_examples", "read_predictions",
           "read_weights", "serialize_weights"]
