"""rpm: the moving-balls experiment of Aitchison & Ganev (TMLR 2024) as a Hydra command-line tool."""
from pathlib import Path

# Configs live at the repository's top level (read there by the editable install of `make install`); a
# non-editable install carries a copy inside the package.
_PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"
CONFIG_DIR = _PACKAGED_CONFIGS if _PACKAGED_CONFIGS.is_dir() else Path(__file__).resolve().parent.parent / "configs"
