"""The NHD wire protocol: receiver endpoints and sender client."""
