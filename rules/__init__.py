"""The bundled rule files (one TOML file per kernel), installed as ``adopter.rules``."""
