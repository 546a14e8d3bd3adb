"""Still images of streams: the live poster (and, for assets, sprite sheets)."""
