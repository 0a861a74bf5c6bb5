"""The core of nhd_bridge: model, contract, engine, state store. It never imports an adapter."""
