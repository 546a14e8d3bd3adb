"""Where recordings live: blobs by key, on local disk or (later) S3-compatible storage.

The storage knows nothing of what the blobs mean; `live/recording/` decides that.
"""

from live.storage.base import Appender, ObjectInfo, Storage, StorageError, check_key
from live.storage.local import LocalStorage

__all__ = ["Appender", "LocalStorage", "ObjectInfo", "Storage", "StorageError", "check_key"]
