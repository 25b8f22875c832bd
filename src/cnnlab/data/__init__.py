"""Datasets: the registry, download + checksum + cache (on disk), format readers, splits,
normalization, augmentation and the in-memory cache of loaded splits (``DataCache``).
Everything here hands uint8 N x C x H x W tensors to the trainer.
"""

from cnnlab.data.arrays import ArrayDataset, Source
from cnnlab.data.cache import ensure_files, user_cache_dir
from cnnlab.data.download import download_file
from cnnlab.data.loaded import DataCache, source_key
from cnnlab.data.registry import DATASETS, DatasetInfo, RemoteFile, known_shape
from cnnlab.data.source import load_dataset, load_source
from cnnlab.data.split import Splits, make_splits
from cnnlab.data.table import dataset_table
from cnnlab.data.transforms import augment_batch, normalization

__all__ = [
    "ArrayDataset", "Source", "Splits", "DATASETS", "DatasetInfo", "RemoteFile",
    "load_source", "load_dataset", "make_splits", "normalization", "augment_batch",
    "known_shape", "dataset_table", "ensure_files", "download_file", "user_cache_dir", "DataCache", "source_key",
]
