"""Device payload profiles (TOML data files); see smartplace.schemas.profiles."""
