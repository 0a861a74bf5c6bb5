"""Built-in adapters, registered through the nhd_bridge entry-point group like any plugin."""
