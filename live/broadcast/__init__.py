"""The live stream's hub: one publisher in, many consumers out, and the session's life."""
