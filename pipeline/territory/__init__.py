"""`territoire init` and the territory configuration file (`--config territoire.toml`)."""
