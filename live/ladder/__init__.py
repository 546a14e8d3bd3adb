"""Adaptive bitrate: lower H.264 renditions beside the untouched source."""
