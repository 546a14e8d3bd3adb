"""Where recordings live: blobs by key, on local disk or in an S3-compatible bucket.

The storage knows nothing of what the blobs mean; `live/recording/` decides that.
"""

from live.storage.base import ObjectInfo, Storage, StorageError, check_key
from live.storage.factory import open_storage
from live.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Storage", "StorageError", "check_key", "open_storage"]
