"""rpm: the moving-balls experiment of Aitchison & Ganev (TMLR 2024) as a Hydra command-line tool."""
from pathlib import Path

# Configs live at the repository's top level (the package is installed editable by `make install`).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
